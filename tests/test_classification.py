"""Stone & Goodrich classification against phantom truth (slow: one phantom per case)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from twinsep.casefolder import PLAN_SCHEMA_VERSION, validate_plan
from twinsep.classification import _nasions, classify
from twinsep.errors import InputError
from twinsep.shared import measure_shared


@functools.cache
def _case(**kw):
    from twinsep.phantom.build import make_phantom
    from twinsep.phantom.spec import PhantomSpec

    kw.setdefault("spacing", (3.0, 3.0, 3.0))
    ph = make_phantom(PhantomSpec(**kw))
    shared = measure_shared(ph.tissues, ph.owner)
    return ph, shared


def _angle_diff(a: float, b: float) -> float:
    return abs(a - b)


CASES = [
    {"axial_rotation": 0.0},
    {"axial_rotation": 30.0},
    {"axial_rotation": 60.0},
    {"axial_rotation": 90.0},
    {"axial_rotation": 120.0},
    {"axial_rotation": 150.0},
    {"axial_rotation": 180.0},
    {"long_axis_angle": 160.0},
    {"long_axis_angle": 120.0},
    {"long_axis_angle": 100.0},
    {"fusion": "partial"},
    {"fusion": "partial", "long_axis_angle": 120.0},
    {"spacing": (2.0, 2.5, 3.0), "oblique": 25.0, "axial_rotation": 150.0, "seed": 3},
]


@pytest.mark.slow
@pytest.mark.parametrize("kw", CASES, ids=[str(sorted(c.items())) for c in CASES])
def test_classification_matches_truth(kw):
    ph, shared = _case(**kw)
    truth = ph.truth["classification"]
    c = classify(ph.tissues, ph.owner, shared)
    assert (c.fusion, c.orientation, c.type) == (
        truth["fusion"], truth["orientation"], truth["type"])
    # measured at 3 mm: long-axis angle within 5 degrees, axial rotation within 4 degrees
    assert _angle_diff(c.long_axis_angle_deg, truth["long_axis_angle_deg"]) < 10.0
    if truth["orientation"] == "vertical":
        assert _angle_diff(c.axial_rotation_deg, truth["axial_rotation_deg"]) < 10.0
    for twin in ("A", "B"):
        long_err = np.degrees(np.arccos(np.clip(
            np.dot(c.twins[twin].long_axis, ph.truth["long_axes"][twin]), -1, 1)))
        ant_err = np.degrees(np.arccos(np.clip(
            np.dot(c.twins[twin].anterior, ph.truth["anterior"][twin]), -1, 1)))
        assert long_err < 10.0 and ant_err < 10.0
    plan = {"schema_version": PLAN_SCHEMA_VERSION, "twinsep_version": "0",
            "classification": c.to_plan()}
    validate_plan(plan)
    assert set(c.to_plan()["method"]) >= {"fusion", "orientation", "type",
                                         "axial_rotation_deg", "long_axis_angle_deg"}


@pytest.mark.slow
def test_nasion_landmarks_set_anterior():
    ph, shared = _case(axial_rotation=90.0)
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
    assert _nasions(None) == {"A": None, "B": None}
    out = _nasions({"A": {"nasion": [1, 2, 3]}, "nasion_B": [4, 5, 6]})
    assert np.allclose(out["A"], [1, 2, 3]) and np.allclose(out["B"], [4, 5, 6])
    with pytest.raises(InputError):
        _nasions({"A": {"nasion": [1, 2]}})
