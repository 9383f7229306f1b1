"""The case folder: where every stage reads its inputs and writes its results.

Layout (see ``docs/case-format.md``)::

    CASE/
      scan.nii.gz            the scan, on its own grid (written by ``ingest``)
      case.json              source description, geometry, hashes (no PHI unless --keep-phi)
      labels/tissues.nii.gz  tissue codes on the scan's grid (``segment``)
      labels/twins.nii.gz    owner codes 0/1/2 on the scan's grid (``identify``, ``separate``)
      plan.json              the plan, validated against ``schema/plan.schema.json``
      figures/               PNG figures
      models/  viewer/  report.html  report.pdf

Writes are atomic: a file is written beside its target and renamed, a new case folder is
built in a temporary sibling folder and renamed at the end, so a failure leaves nothing
half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinsep import __version__
from twinsep.errors import InputError

#: Version of the plan.json format; bump on purpose when the public interface changes.
PLAN_SCHEMA_VERSION = "1.0.0"

#: Wall time and memory of each stage of the last plan, beside plan.json (which holds no
#: times, so that it is byte-identical for the same input and settings).
TIMINGS_FILE = Path("timings.json")


@dataclass(frozen=True)
class Case:
    """Paths of one case folder."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def scan(self) -> Path:
        return self.root / "scan.nii.gz"

    @property
    def case_json(self) -> Path:
        return self.root / "case.json"

    @property
    def labels(self) -> Path:
        return self.root / "labels"

    @property
    def tissues(self) -> Path:
        return self.labels / "tissues.nii.gz"

    @property
    def twins(self) -> Path:
        return self.labels / "twins.nii.gz"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def viewer(self) -> Path:
        return self.root / "viewer"

    def require(self, *paths: Path, hint: str = "") -> None:
        """Raise :class:`InputError` naming the first missing path."""
        if not self.root.is_dir():
            raise InputError(f"{self.root}: not a case folder (run `twinsep ingest` first)")
        for p in paths:
            if not p.exists():
                rel = p.relative_to(self.root)
                why = f" ({hint})" if hint else ""
                raise InputError(f"{self.root}: {rel} is missing{why}")


# --- deterministic JSON ----------------------------------------------------------------
def _clean(obj: Any, ndigits: int) -> Any:
    """Round floats and turn numpy scalars/arrays, tuples and Paths into plain JSON."""
    if isinstance(obj, dict):
        return {str(k): _clean(v, ndigits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v, ndigits) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, str):  # numpy scalar or array
        return _clean(obj.tolist(), ndigits)
    if isinstance(obj, bool) or obj is None or isinstance(obj, int | str):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        r = round(obj, ndigits)
        return 0.0 if r == 0 else r
    if hasattr(obj, "model_dump"):  # pydantic
        return _clean(obj.model_dump(mode="json"), ndigits)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def dumps(obj: Any, ndigits: int = 6) -> str:
    """Deterministic JSON text: sorted keys, floats rounded to ``ndigits``, newline at end."""
    return json.dumps(_clean(obj, ndigits), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_text_atomic(path: Path, text: str | bytes) -> None:
    """Write a file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode() if isinstance(text, str) else text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_volume(volume, path: Path) -> None:
    """Write an image beside ``path`` (format from the suffix) and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".nii.gz"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        volume.write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, obj: Any) -> None:
    """Write deterministic JSON atomically."""
    write_text_atomic(path, dumps(obj))


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


@contextlib.contextmanager
def atomic_output_dir(out: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder in a temporary sibling and rename it to ``out`` on success.

    ``out`` may exist if it is empty (or ``overwrite``); on any exception nothing is left
    at ``out`` beyond what was there before.
    """
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out}: folder is not empty (choose another --out or use --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def load_timings(case: Case) -> dict:
    """``CASE/timings.json``, the wall times of the last plan (empty when there is none)."""
    p = case.root / TIMINGS_FILE
    try:
        return read_json(p) if p.exists() else {}
    except (OSError, ValueError):
        return {}


# --- hashes ----------------------------------------------------------------------------
def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_array(array) -> str:
    """Hash of an array's dtype, shape and bytes (independent of file compression)."""
    import numpy as np

    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


# --- plan.json -------------------------------------------------------------------------
def schema() -> dict:
    """The JSON Schema of plan.json."""
    from importlib.resources import files

    return json.loads(files("twinsep").joinpath("schema/plan.schema.json").read_text())


def validate_plan(plan: dict) -> None:
    """Raise ``jsonschema.ValidationError`` if ``plan`` does not follow the schema."""
    import jsonschema

    jsonschema.validate(json.loads(dumps(plan)), schema())


def load_plan(case: Case) -> dict:
    """plan.json of ``case``, or a new empty plan."""
    if case.plan.exists():
        return read_json(case.plan)
    return {"schema_version": PLAN_SCHEMA_VERSION, "twinsep_version": __version__}


def update_plan(case: Case, **sections: Any) -> dict:
    """Set top-level sections of plan.json, validate and write it atomically."""
    plan = load_plan(case)
    plan["schema_version"] = PLAN_SCHEMA_VERSION
    plan["twinsep_version"] = __version__
    for key, value in sections.items():
        plan[key] = json.loads(dumps(value))
    validate_plan(plan)
    write_json(case.plan, plan)
    return plan
