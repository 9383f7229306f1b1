"""Stone & Goodrich classification against phantom truth.

* ``test_classification_matches_truth`` (slow, 3 mm phantoms of the session's cache):
  truth owner map, every rotation, long-axis angle and fusion the generator makes.
* ``test_pipeline_classification`` (2 mm, the session's cached phantoms): every kind of
  ``benchmarks/bench_identity.py``'s ``PHANTOM_SET`` from the CT alone, through the
  pipeline (``segment_ct`` -> ``identify`` -> ``measure_shared`` -> ``classify``; the
  segmentation and identity are the session's cached ones, shared with test_identity.py).
* ``test_pair_geometry_*`` (fast): the pair measures on exact phantom geometry.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from twinsep.casefolder import PLAN_SCHEMA_VERSION, validate_plan
from twinsep.errors import InputError
from twinsep.identify.classification import TwinOrientation, classify, nasions, pair_geometry
from twinsep.identify.shared import measure_shared

#: Largest error (degrees) of the long-axis angle and of the axial rotation (the issue's
#: acceptance), and of each twin's long axis and anterior direction.
ANGLE_TOL_DEG = 10.0


def _phantom_set() -> dict[str, dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from bench_identity import PHANTOM_SET

    return PHANTOM_SET


@pytest.fixture(scope="module")
def truth_case(make_phantom_obj):
    """``truth_case(**spec) -> (phantom, shared)``: a phantom (3 mm unless ``spacing`` is
    given; the session's cache) and ``measure_shared`` on its truth owner map."""
    cache: dict[str, object] = {}

    def get(**kw):
        kw.setdefault("spacing", 3.0)
        ph = make_phantom_obj(**kw)
        key = ph.spec.model_dump_json()
        if key not in cache:
            cache[key] = measure_shared(ph.tissues, ph.owner)
        return ph, cache[key]

    return get


def _angle(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    c = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def _check(c, ph) -> None:
    """Class, both angles and each twin's axes against the phantom's truth."""
    truth = ph.truth["classification"]
    assert (c.fusion, c.orientation, c.type) == (
        truth["fusion"], truth["orientation"], truth["type"])
    assert abs(c.long_axis_angle_deg - truth["long_axis_angle_deg"]) < ANGLE_TOL_DEG
    assert abs(c.axial_rotation_deg - truth["axial_rotation_deg"]) < ANGLE_TOL_DEG
    for twin in ("A", "B"):
        assert _angle(c.twins[twin].long_axis, ph.truth["long_axes"][twin]) < ANGLE_TOL_DEG
        assert _angle(c.twins[twin].anterior, ph.truth["anterior"][twin]) < ANGLE_TOL_DEG


CASES = [
    {"axial_rotation": 0.0},
    {"axial_rotation": 30.0},
    {"axial_rotation": 60.0},
    {"axial_rotation": 90.0},
    {"axial_rotation": 120.0},
    {"axial_rotation": 150.0},
    {"axial_rotation": 180.0},
    {"long_axis_angle": 160.0},
    *({"long_axis_angle": angle, "axial_rotation": rot}
      for angle in (120.0, 100.0) for rot in (0.0, 45.0, 90.0, 150.0)),
    {"fusion": "partial"},
    {"fusion": "partial", "long_axis_angle": 120.0},
    {"junction_offset": 25.0, "axial_rotation": 180.0},
    {"spacing": (2.0, 2.5, 3.0), "oblique": 25.0, "axial_rotation": 150.0, "seed": 3},
]


@pytest.mark.slow
@pytest.mark.parametrize("kw", CASES, ids=[str(sorted(c.items())) for c in CASES])
def test_classification_matches_truth(truth_case, kw):
    """At 3 mm, truth owner map: measured errors <= 5 degrees (long axis angle, rotation)."""
    ph, shared = truth_case(**kw)
    c = classify(ph.tissues, ph.owner, shared)
    _check(c, ph)
    plan = {"schema_version": PLAN_SCHEMA_VERSION, "twinsep_version": "0",
            "classification": c.to_plan()}
    validate_plan(plan)
    assert set(c.to_plan()["method"]) >= {"fusion", "orientation", "type",
                                         "axial_rotation_deg", "long_axis_angle_deg"}
    assert c.junction_axis is not None and abs(np.linalg.norm(c.junction_axis) - 1) < 1e-9


@pytest.mark.parametrize("name", list(_phantom_set()))
def test_pipeline_classification(make_phantom_obj, make_segmentation, make_identity,
                                 name: str) -> None:
    """Every phantom kind at 2 mm, measured on the pipeline's own labels (CT alone).

    Classification right, long-axis angle and axial rotation within 10 degrees, a shared
    vessel found if and only if the phantom's sinus crosses between the twins. (Measured:
    errors <= 4.8 degrees; ~4 s per kind besides building the phantom.)
    """
    kw = dict(_phantom_set()[name])
    factor = kw.pop("spacing_factor", (1.0, 1.0, 1.0))
    kw["spacing"] = tuple(2.0 * f for f in factor)
    ph = make_phantom_obj(**kw)
    tissues = make_segmentation(**kw)  # segment_ct(ph.ct)
    owner = make_identity("ct", **kw).owner  # identify(tissues)
    shared = measure_shared(tissues, owner)
    assert bool(shared.vessels) == bool(ph.truth["shared_vessel"]["crosses"])
    _check(classify(tissues, owner, shared), ph)


@pytest.mark.slow
def test_pipeline_classification_1mm(make_phantom_obj, make_segmentation,
                                     make_identity) -> None:
    """One kind at 1 mm through the pipeline (~15 s with the phantom; the segmentation and
    identity are shared with test_identity.py's ``test_hard_kinds_1mm``)."""
    kw = {"spacing": (1.0, 1.25, 1.6), "fusion": "total", "oblique": 25.0}
    ph = make_phantom_obj(**kw)
    tissues = make_segmentation(**kw)  # segment_ct(ph.ct)
    owner = make_identity("ct", **kw).owner  # identify(tissues)
    shared = measure_shared(tissues, owner)
    assert bool(shared.vessels) == bool(ph.truth["shared_vessel"]["crosses"])
    _check(classify(tissues, owner, shared), ph)


# --- pair geometry on exact phantom poses (fast) ------------------------------------------
def _pose(long_axis_angle: float, axial_rotation: float, offset: float = 0.0):
    """Exact orientations of the phantom's twins (see twinsep.phantom.build.layout)."""
    from twinsep.phantom.anatomy import rotation

    alpha = np.deg2rad((180.0 - long_axis_angle) / 2.0)
    c = np.array([0.0, np.sin(alpha), np.cos(alpha)])
    t = np.array([0.0, np.cos(alpha), -np.sin(alpha)])
    rb = rotation(c, axial_rotation) @ rotation(t, 180.0)
    z, ant = np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0])
    centre_b = 90.0 * c + offset * np.array([1.0, 0.0, 0.0])

    def twin(r, centre):
        return TwinOrientation(centroid_mm=list(centre), long_axis=list(r @ z),
                               anterior=list(r @ ant), left_right=list(r @ np.cross(z, ant)),
                               match_score=1.0, anterior_from="test")

    return twin(np.eye(3), np.zeros(3)), twin(rb, centre_b), c


@pytest.mark.parametrize("angle", [180.0, 160.0, 140.0, 120.0, 100.0])
@pytest.mark.parametrize("rot", [0.0, 45.0, 90.0, 150.0, 180.0])
def test_pair_geometry_exact(angle: float, rot: float) -> None:
    """The generator's long-axis angle and axial rotation, exactly, on its own poses.

    The plain angle between the long axes is not the generator's angle once twin B is
    turned about the contact normal (120 / 90 gives 138.6 degrees, 120 / 150 gives 165).
    """
    a, b, c = _pose(angle, rot)
    g = pair_geometry(a, b)
    assert g.long_axis_angle_deg == pytest.approx(angle, abs=1e-6)
    assert g.axial_rotation_deg == pytest.approx(rot, abs=1e-6)
    assert np.allclose(g.junction_axis, c, atol=1e-9)
    assert g.long_axes_angle_deg == pytest.approx(_angle(a.long_axis, b.long_axis))


@pytest.mark.parametrize("rot", [0.0, 180.0])
@pytest.mark.parametrize("offset", [25.0, 40.0])
def test_pair_geometry_off_centre(rot: float, offset: float) -> None:
    """An off-centre junction tilts the centroid line, not the measures (types I and II)."""
    a, b, _ = _pose(180.0, rot, offset)
    g = pair_geometry(a, b)
    assert g.long_axis_angle_deg == pytest.approx(180.0, abs=1e-6)
    assert g.axial_rotation_deg == pytest.approx(rot, abs=1e-6)


@pytest.mark.slow
def test_nasion_landmarks_set_anterior(truth_case):
    ph, shared = truth_case(axial_rotation=90.0)
    cents = {}
    for twin, code in (("A", 1), ("B", 2)):
        m = (ph.tissues.array == 4) & (ph.owner.array == code)
        cents[twin] = ph.tissues.index_to_world(np.argwhere(m)).mean(0)
    lm = {t: {"nasion": list(cents[t] + 70.0 * np.asarray(ph.truth["anterior"][t]))}
          for t in ("A", "B")}
    c = classify(ph.tissues, ph.owner, shared, landmarks=lm)
    assert c.twins["A"].anterior_from == "nasion landmark"
    assert abs(c.axial_rotation_deg - 90.0) < 10.0


def test_landmark_formats():
    assert nasions(None) == {"A": None, "B": None}
    out = nasions({"A": {"nasion": [1, 2, 3]}, "nasion_B": [4, 5, 6]})
    assert np.allclose(out["A"], [1, 2, 3]) and np.allclose(out["B"], [4, 5, 6])
    with pytest.raises(InputError):
        nasions({"A": {"nasion": [1, 2]}})
