"""The case folder: atomic writes, deterministic JSON, plan.json validation."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest

from twinsep.casefolder import (
    PLAN_SCHEMA_VERSION,
    Case,
    atomic_output_dir,
    dumps,
    load_plan,
    sha256_array,
    update_plan,
    validate_plan,
)
from twinsep.errors import InputError


def test_dumps_is_deterministic_and_rounds():
    a = {"b": np.float32(1.23456789), "a": [np.int64(3), (1.0, -0.0)], "c": float("nan")}
    b = {"c": float("nan"), "a": [3, [1.0, 0.0]], "b": 1.2345679}
    assert dumps(a) == dumps(b)
    assert json.loads(dumps(a)) == {"a": [3, [1.0, 0.0]], "b": 1.234568, "c": None}


def test_atomic_output_dir_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "case"
    with pytest.raises(RuntimeError), atomic_output_dir(out) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_dir_renames_on_success_and_refuses_non_empty(tmp_path):
    out = tmp_path / "case"
    with atomic_output_dir(out) as tmp:
        (tmp / "a.txt").write_text("x")
    assert (out / "a.txt").read_text() == "x"
    with pytest.raises(InputError, match="already a twinsep case"), atomic_output_dir(out):
        pass
    assert (out / "a.txt").exists()
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "b.txt").write_text("y")
    with pytest.raises(InputError, match="not made by twinsep"), atomic_output_dir(
            tmp_path / "theirs", overwrite=True):
        pass
    assert [p.name for p in (tmp_path / "theirs").iterdir()] == ["b.txt"]


def test_update_plan_validates_and_keeps_sections(tmp_path):
    case = Case(tmp_path)
    update_plan(case, conjoined=True)
    plan = update_plan(case, classification={
        "fusion": "total", "orientation": "vertical", "type": "I",
        "axial_rotation_deg": 10.0, "long_axis_angle_deg": 178.0,
    })
    assert plan["conjoined"] is True
    assert load_plan(case)["schema_version"] == PLAN_SCHEMA_VERSION
    with pytest.raises(jsonschema.ValidationError):
        update_plan(case, classification={"fusion": "sideways"})
    # the failed update left the file as it was
    assert load_plan(case)["classification"]["fusion"] == "total"


def test_schema_rejects_bad_assignment_table():
    plan = {"schema_version": PLAN_SCHEMA_VERSION, "twinsep_version": "0",
            "schedule": {"assignments": [{"person": "p", "role": "r", "phase": "x",
                                          "table": "green", "start_h": 0, "end_h": 1}]}}
    with pytest.raises(jsonschema.ValidationError):
        validate_plan(plan)


def test_sha256_array_depends_on_dtype_and_shape():
    a = np.zeros((2, 3), np.uint8)
    assert sha256_array(a) != sha256_array(a.reshape(3, 2))
    assert sha256_array(a) != sha256_array(a.astype(np.int8))
    assert sha256_array(a) == sha256_array(a.copy())
