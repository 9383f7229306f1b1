"""One settings convention: every stage setting is reachable through ``plan``, the defaults
live in one file, and a bad key names where it came from."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from twinsep.errors import InputError
from twinsep.pipeline import STAGES, PlanSettings, plan_settings, stage_settings
from twinsep.settings import Settings, defaults, parse_assignments

ROOT = Path(__file__).resolve().parents[1]


def _leaves(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    """Every leaf setting of ``model`` as (dotted key, default value)."""
    out = []
    inst = model()
    for name in model.model_fields:
        value = getattr(inst, name)
        if isinstance(value, BaseModel):
            out += _leaves(type(value), f"{prefix}{name}.")
        else:
            out.append((f"{prefix}{name}", value))
    return out


def _candidates(value: Any, files: list[Path]) -> list[Any]:
    """Values of the same kind as ``value`` (a default) that differ from it."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int | float):
        return [value * 1.1 + 0.01, value * 0.9, value + 1, value - 1, 1, 0.5]
    if isinstance(value, tuple | list):
        return [[v * 1.1 + 0.01 for v in value], [v + 1 for v in value]]
    if hasattr(value, "value"):  # an enum
        return [m.value for m in type(value) if m is not value]
    if isinstance(value, str):
        return ["watershed", "nearest", value + "x"]
    # None: an optional path, number, point or plane
    return [*map(str, files), 2, 1.5, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 0.0, 0.0, 1.0], "1.2.3"]


def _get(settings: Any, key: str) -> Any:
    for part in key.split("."):
        settings = getattr(settings, part)
    return settings


def _same(a: Any, b: Any) -> bool:
    def norm(v: Any) -> Any:
        if hasattr(v, "value"):
            return v.value
        if isinstance(v, tuple | list):
            return [norm(x) for x in v]
        return str(v) if isinstance(v, Path) else v

    return norm(a) == norm(b)


def test_every_stage_setting_can_be_set_through_plan(tmp_path: Path) -> None:
    scan = tmp_path / "scan.nii.gz"
    scan.write_bytes(b"")
    recon = tmp_path / "reconstruction.yaml"
    recon.write_text("separation_distance_mm: 50\n")
    files = [ROOT / "src" / "twinsep" / "data" / "risk.yaml", recon]
    # settings that only come in pairs
    companion = {"identify.seed_a_mm": ["identify.seed_b_mm=[0, 0, 0]"],
                 "identify.seed_b_mm": ["identify.seed_a_mm=[0, 0, 0]"]}
    unreachable = []
    n = 0
    for st in STAGES:
        for key, default in _leaves(st.settings):
            if st.name == "ingest" and key == "scan":
                continue  # the plan's argument
            n += 1
            for candidate in _candidates(default, files):
                text = json.dumps(candidate)
                items = [f"{st.name}.{key}={text}", *companion.get(f"{st.name}.{key}", [])]
                try:
                    s = plan_settings(scan, assignments=items)
                except InputError:
                    continue
                got = _get(s.of(st), key)
                if not _same(got, default):
                    break
            else:
                unreachable.append(f"{st.name}.{key}")
    assert n > 80  # every stage's options, the CT segmentation and the reconstruction
    assert not unreachable, unreachable


def test_every_field_has_its_default_in_the_defaults_file() -> None:
    doc = defaults()
    assert list(doc) == [s.name for s in STAGES]
    for st in STAGES:
        model = st.settings()
        dumped = model.model_dump(mode="json")
        section = doc[st.name]
        if st.name == "ingest":
            dumped.pop("scan")  # the plan's argument, not a setting with a default
        assert dumped == json.loads(json.dumps(section)), st.name
        # no key in the file that the model does not have (extra="forbid" would refuse it)
        st.settings.model_validate({k: v for k, v in section.items()})


def test_settings_models_are_frozen_and_refuse_unknown_keys() -> None:
    for st in STAGES:
        assert issubclass(st.settings, Settings)
        model = st.settings()
        first = next(iter(type(model).model_fields))
        with pytest.raises(ValidationError):
            setattr(model, first, None)
        with pytest.raises(ValidationError):
            st.settings(not_a_setting=1)


def test_precedence_file_options_assignments(tmp_path: Path) -> None:
    scan = tmp_path / "scan.nii.gz"
    scan.write_bytes(b"")
    f = tmp_path / "team.yaml"
    f.write_text("separate:\n  corridor_mm: 14\n  stages: 3\nsegment:\n  ct:\n    vessel_hu: 150\n")
    s = plan_settings(scan, files=[f])
    assert (s.separate.corridor_mm, s.separate.stages, s.segment.ct.vessel_hu) == (14, 3, 150)
    s = plan_settings(scan, files=[f], stages=2)  # a named option wins over the file
    assert (s.separate.corridor_mm, s.separate.stages) == (14, 2)
    s = plan_settings(scan, files=[f], stages=2, assignments=["separate.stages=4"])
    assert s.separate.stages == 4  # --set wins over both
    assert plan_settings(scan).separate.corridor_mm == defaults("separate.corridor_mm")


def test_bad_settings_name_the_file_and_the_key(tmp_path: Path) -> None:
    scan = tmp_path / "scan.nii.gz"
    scan.write_bytes(b"")
    f = tmp_path / "team.yaml"
    f.write_text("separate:\n  corrdor_mm: 14\n")
    with pytest.raises(InputError, match=r"team\.yaml: setting separate\.corrdor_mm: unknown"):
        plan_settings(scan, files=[f])
    f.write_text("separate:\n  corridor_mm: -3\n")
    with pytest.raises(InputError, match=r"team\.yaml: setting separate\.corridor_mm"):
        plan_settings(scan, files=[f])
    f.write_text("separat:\n  corridor_mm: 3\n")
    with pytest.raises(InputError, match="unknown stage 'separat'"):
        plan_settings(scan, files=[f])
    with pytest.raises(InputError, match=r"--set: setting models\.scale"):
        plan_settings(scan, assignments=["models.scale=-1"])
    with pytest.raises(InputError, match=r"STAGE\.KEY=VALUE"):
        plan_settings(scan, assignments=["corridor_mm=3"])
    with pytest.raises(InputError, match=r"setting separate\.sinus_mm"):
        stage_settings(STAGES[3], assignments=["sinus_mm=-1"])


def test_assignments_parse_yaml_values() -> None:
    assert parse_assignments(["a.b=12", "a.c=true", "a.d=[1, 2]", "a.e=null", "x.y.z=hello"]) == {
        "a": {"b": 12, "c": True, "d": [1, 2], "e": None}, "x": {"y": {"z": "hello"}}}


def test_plan_settings_has_one_field_per_stage() -> None:
    assert list(PlanSettings.model_fields) == [s.name for s in STAGES]
    for st in STAGES:
        hint = typing.get_type_hints(PlanSettings)[st.name]
        assert hint is st.settings


def test_a_set_setting_reaches_plan_json(tmp_path: Path, make_phantom_case) -> None:
    """``plan --set`` is recorded in plan.json ``case.settings`` (and in the stage's key)."""
    from twinsep.cli import main

    ph = make_phantom_case(fusion="total", spacing=3.0)
    out = tmp_path / "case"
    assert main(["plan", str(ph / "ct.nii.gz"), "--out", str(out), "--set",
                 "separate.corridor_mm=12", "--set", "view.max_size=128"]) == 0
    plan = json.loads((out / "plan.json").read_text())
    assert plan["case"]["settings"]["separate"]["corridor_mm"] == 12
    assert plan["case"]["settings"]["viewer"]["max_size"] == 128
    assert plan["case"]["settings"]["separate"]["choose"] == "min-risk"
    # a setting changed back to its default redoes the stages it touches, and only those
    assert main(["plan", str(ph / "ct.nii.gz"), "--out", str(out), "--set",
                 "separate.corridor_mm=12"]) == 0
    status = {k: v["status"] for k, v in
              json.loads((out / "timings.json").read_text())["stages"].items()}
    assert status["separate"] == "skipped" and status["viewer"] == "ran", status
