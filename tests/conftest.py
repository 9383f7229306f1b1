"""Shared fixtures: small craniopagus phantoms, built once per test session.

``phantom_total``, ``phantom_partial``, ``phantom_separate``
    :class:`twinsep.phantom.Phantom` objects at 2 mm (type I total with a shared circular
    sinus; partial with a bone plate; two separate heads 10 mm apart).
``phantom_total_case``, ``phantom_partial_case``, ``phantom_separate_case``
    The same phantoms written to folders (``ct.nii.gz``, ``tissues.nii.gz``,
    ``owner.nii.gz``, ``truth.json``); treat them as read-only.
``make_phantom_obj(**spec)``
    Factory: a cached :class:`Phantom` for any :class:`PhantomSpec` options
    (``spacing`` defaults to 2 mm isotropic; a single number means isotropic).
``make_phantom_case(**spec)``
    Factory: a cached case folder (Path) written by ``write_phantom`` for those options.
``make_segmentation(**spec)``
    Factory: ``segment_ct`` of that phantom's CT (a tissue :class:`Volume`, cached).
``make_identity(source, **spec)``
    Factory: ``identify`` (default options) on that phantom's true tissue map
    (``source="tissues"``) or on ``make_segmentation``'s (``source="ct"``), cached.

The cached objects are shared by every test of the session: read them, never change
them in place (copy first, e.g. ``shutil.copytree`` a case folder into ``tmp_path``). The
arrays of the cached volumes are read-only, so that a change in place fails at once.
``validate_glb(path)``
    Factory: the Khronos glTF validator's report (dict) of a GLB; skips the test when node
    or ``node_modules/gltf-validator`` is missing (``npm ci``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

DEFAULT_SPACING_MM = 2.0
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def validate_glb() -> Callable[[Path], dict]:
    """``validate_glb(path) -> report`` of the Khronos glTF validator (node)."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "gltf-validator").is_dir():
        pytest.skip("node or node_modules/gltf-validator missing (npm ci)")

    def run(path: Path) -> dict:
        out = subprocess.run([node, str(ROOT / "tests" / "validate_gltf.mjs"), str(path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
        return json.loads(out.stdout)

    return run


def _read_only(*volumes) -> None:
    """Make the arrays of cached volumes read-only: a test or a function that would change
    a shared input in place fails instead of changing it for every later test."""
    for vol in volumes:
        vol.array.flags.writeable = False


def _spec(**spec):
    from twinsep.phantom import PhantomSpec

    sp = spec.pop("spacing", DEFAULT_SPACING_MM)
    if isinstance(sp, int | float):
        sp = (float(sp),) * 3
    return PhantomSpec(spacing=tuple(sp), **spec)


@pytest.fixture(scope="session")
def make_phantom_obj() -> Callable[..., object]:
    """Factory ``make_phantom_obj(**spec) -> Phantom`` (cached per session)."""
    from twinsep.phantom import make_phantom

    cache: dict[str, object] = {}

    def factory(**spec):
        s = _spec(**spec)
        key = s.model_dump_json()
        if key not in cache:
            ph = make_phantom(s)
            _read_only(ph.ct, ph.tissues, ph.owner)
            cache[key] = ph
        return cache[key]

    return factory


@pytest.fixture(scope="session")
def make_phantom_case(tmp_path_factory, make_phantom_obj) -> Callable[..., Path]:
    """Factory ``make_phantom_case(**spec) -> Path`` of a written phantom folder (cached)."""
    from twinsep.phantom import write_phantom

    cache: dict[str, Path] = {}

    def factory(**spec):
        s = _spec(**dict(spec))
        key = s.model_dump_json()
        if key not in cache:
            out = tmp_path_factory.mktemp("phantom") / "case"
            write_phantom(make_phantom_obj(**spec), out)
            cache[key] = out
        return cache[key]

    return factory


@pytest.fixture(scope="session")
def make_segmentation(make_phantom_obj) -> Callable[..., object]:
    """Factory ``make_segmentation(**spec) -> Volume``: the phantom's CT segmented by
    ``twinsep.segment.segment_ct`` (cached per session)."""
    from twinsep.segment import segment_ct

    cache: dict[str, object] = {}

    def factory(**spec):
        key = _spec(**dict(spec)).model_dump_json()
        if key not in cache:
            cache[key] = segment_ct(make_phantom_obj(**spec).ct)
            _read_only(cache[key])
        return cache[key]

    return factory


@pytest.fixture(scope="session")
def make_identity(make_phantom_obj, make_segmentation) -> Callable[..., object]:
    """Factory ``make_identity(source, **spec)``: ``twinsep.identify.identity.identify``
    with its default options on the phantom's true tissue map (``source="tissues"``) or
    on its segmented CT (``source="ct"``, :func:`make_segmentation`); cached per session."""
    from twinsep.identify.identity import identify

    cache: dict[tuple[str, str], object] = {}

    def factory(source: str, **spec):
        key = (source, _spec(**dict(spec)).model_dump_json())
        if key not in cache:
            if source == "tissues":
                tissues = make_phantom_obj(**spec).tissues
            elif source == "ct":
                tissues = make_segmentation(**spec)
            else:
                raise ValueError(f"source must be 'tissues' or 'ct', not {source!r}")
            cache[key] = identify(tissues)
            _read_only(cache[key].owner)
        return cache[key]

    return factory


@pytest.fixture(scope="session")
def phantom_total(make_phantom_obj):
    """Type I total vertical craniopagus with a shared circular sinus, 2 mm."""
    return make_phantom_obj(fusion="total")


@pytest.fixture(scope="session")
def phantom_partial(make_phantom_obj):
    """Partial fusion (bone plate between the heads, no shared sinus), 2 mm."""
    return make_phantom_obj(fusion="partial")


@pytest.fixture(scope="session")
def phantom_separate(make_phantom_obj):
    """Two heads that do not touch (10 mm gap), 2 mm."""
    return make_phantom_obj(separate=True)


@pytest.fixture(scope="session")
def phantom_total_case(make_phantom_case) -> Path:
    return make_phantom_case(fusion="total")


@pytest.fixture(scope="session")
def phantom_partial_case(make_phantom_case) -> Path:
    return make_phantom_case(fusion="partial")


@pytest.fixture(scope="session")
def phantom_separate_case(make_phantom_case) -> Path:
    return make_phantom_case(separate=True)


def read_truth(case: Path) -> dict:
    """truth.json of a phantom folder."""
    return json.loads((case / "truth.json").read_text())
