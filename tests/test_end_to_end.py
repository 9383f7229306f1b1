"""End to end: ``twinsep plan`` on phantoms of each kind, from NIfTI and from DICOM.

3 mm phantoms keep these tests to about a minute or two on 2 cores.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from twinsep.casefolder import CASE_ENTRIES, read_json, validate_plan
from twinsep.report import CONJOINED_SECTIONS, NOT_CONJOINED_SECTIONS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ROSTER = ROOT / "examples" / "roster.yaml"
SPACING = 3.0


def _plan(scan: Path, out: Path, *extra: str) -> int:
    from twinsep.cli import main

    return main(["plan", str(scan), "--out", str(out), *extra])


def _timings(out: Path) -> dict[str, str]:
    return {k: v["status"] for k, v in read_json(out / "timings.json")["stages"].items()}


def _sections(out: Path) -> tuple[str, ...]:
    return tuple(re.findall(r'<section id="([a-z-]+)"', (out / "report.html").read_text()))


def test_total_type_iii_from_nifti(make_phantom_case, tmp_path: Path) -> None:
    ph = make_phantom_case(fusion="total", axial_rotation=60.0, spacing=SPACING)
    out = tmp_path / "case"
    assert _plan(ph / "ct.nii.gz", out, "--roster", str(ROSTER)) == 0
    plan = read_json(out / "plan.json")
    validate_plan(plan)
    assert plan["conjoined"] is True
    assert plan["classification"]["fusion"] == "total"
    for key in ("segmentation", "identity", "shared", "classification", "separation",
                "reconstruction", "schedule", "case"):
        assert key in plan, key
    assert plan["case"]["timings"] == "timings.json"
    # everything the plan wrote is one of the case folder's entries, which a re-ingest
    # replaces (and nothing else in the folder)
    assert {p.name for p in out.iterdir()} <= set(CASE_ENTRIES)
    assert {"schedule", "models", "viewer", "report.pdf"} <= {p.name for p in out.iterdir()}
    status = _timings(out)
    assert status["report"] == "ran" and status["schedule"] == "ran"
    assert all(s in ("ran", "unavailable") for s in status.values()), status
    assert _sections(out) == CONJOINED_SECTIONS
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    # segmented from the CT: the report says how to read the brain contact area
    assert "count as touching" in (out / "report.html").read_text()
    first = (out / "plan.json").read_bytes()

    # re-running is cheap: everything is skipped and nothing changes
    assert _plan(ph / "ct.nii.gz", out, "--roster", str(ROSTER)) == 0
    assert set(_timings(out).values()) <= {"skipped", "unavailable"}
    assert (out / "plan.json").read_bytes() == first

    # redo from simulate: the same input and settings give a byte-identical plan.json
    assert _plan(ph / "ct.nii.gz", out, "--roster", str(ROSTER), "--from", "simulate") == 0
    status = _timings(out)
    assert status["separate"] == "skipped" and status["simulate"] == "ran"
    assert (out / "plan.json").read_bytes() == first

    # a changed setting (no roster) redoes only what depends on it
    assert _plan(ph / "ct.nii.gz", out) == 0
    status = _timings(out)
    assert status["separate"] == "skipped" and status["schedule"] == "not applicable"


def test_partial_from_dicom(make_phantom_obj, tmp_path: Path) -> None:
    from twinsep.phantom import write_phantom

    ph = tmp_path / "phantom"
    write_phantom(make_phantom_obj(fusion="partial", spacing=SPACING), ph, dicom=True)
    out = tmp_path / "case"
    assert _plan(ph / "dicom", out) == 0
    plan = read_json(out / "plan.json")
    validate_plan(plan)
    assert plan["conjoined"] is True
    assert plan["classification"]["fusion"] == "partial"
    assert read_json(out / "case.json")["source"]["format"].startswith("dicom")
    assert _timings(out)["schedule"] == "not applicable"
    assert _sections(out) == CONJOINED_SECTIONS
    # no patient name or ID anywhere in the outputs, and so no DICOM-SEG (it must carry them)
    for name in ("plan.json", "case.json", "report.html", "timings.json"):
        text = (out / name).read_text()
        assert "PHANTOM^TWINS" not in text and '"PHANTOM"' not in text, name
    assert not (out / "models" / "segmentation.dcm").exists()
    assert plan["models"]["dicom_seg"] is None
    # with --keep-phi the plan also writes the DICOM-SEG that references the source series
    assert _plan(ph / "dicom", out, "--keep-phi") == 0
    import pydicom

    seg = pydicom.dcmread(out / "models" / "segmentation.dcm")
    assert seg.Modality == "SEG" and str(seg.PatientName) == "PHANTOM^TWINS"
    assert read_json(out / "plan.json")["models"]["dicom_seg"] == "models/segmentation.dcm"


def test_not_conjoined_stops_after_identify(make_phantom_case, tmp_path: Path, capsys) -> None:
    ph = make_phantom_case(separate=True, spacing=SPACING)
    out = tmp_path / "case"
    # the phantom's own tissue map (--tissues): at 3 mm the CT segmentation closes the gap
    assert _plan(ph / "ct.nii.gz", out, "--roster", str(ROSTER),
                 "--tissues", str(ph / "tissues.nii.gz")) == 0
    assert "not conjoined" in capsys.readouterr().err
    plan = read_json(out / "plan.json")
    validate_plan(plan)
    assert plan["conjoined"] is False
    assert "separation" not in plan
    status = _timings(out)
    assert status["identify"] == "ran" and status["report"] == "ran"
    assert status["separate"] == "not applicable"
    assert _sections(out) == NOT_CONJOINED_SECTIONS
    assert json.loads((out / ".twinsep" / "stages.json").read_text())["stages"]["report"]


KINDS = {
    "type I": {"fusion": "total", "axial_rotation": 0.0},
    "type II": {"fusion": "total", "axial_rotation": 180.0},
    # 2 mm: at 3 mm the 4 mm connector veins are too coarse for the cut to divide them (the
    # min-risk cut then wraps round B's short stretch of sinus instead)
    "angular": {"fusion": "total", "long_axis_angle": 120.0, "axial_rotation": 45.0,
                "spacing": 2.0},
    "oblique anisotropic": {"fusion": "total", "axial_rotation": 90.0, "oblique": 25.0,
                            "spacing": (2.5, 3.0, 3.5)},
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_plans_and_classifies(make_phantom_case, tmp_path: Path, kind: str) -> None:
    spec = {"spacing": SPACING, **KINDS[kind]}
    ph = make_phantom_case(**spec)
    truth = read_json(ph / "truth.json")["classification"]
    out = tmp_path / "case"
    assert _plan(ph / "ct.nii.gz", out) == 0
    plan = read_json(out / "plan.json")
    validate_plan(plan)
    got = plan["classification"]
    assert (got["fusion"], got["orientation"], got["type"]) == (
        truth["fusion"], truth["orientation"], truth["type"])
    assert plan["separation"]["crossing_vessels"], "the shared sinus must be divided"
    assert _sections(out) == CONJOINED_SECTIONS


def test_same_input_same_plan_in_another_folder(make_phantom_case, tmp_path: Path) -> None:
    """plan.json holds no paths or times: two folders, byte-identical plans."""
    ph = make_phantom_case(spacing=SPACING)
    for name in ("one", "two"):
        assert _plan(ph / "ct.nii.gz", tmp_path / name, "--roster", str(ROSTER)) == 0
    assert (tmp_path / "one" / "plan.json").read_bytes() == (
        tmp_path / "two" / "plan.json").read_bytes()


def test_change_a_decision_and_rerun(make_phantom_case, tmp_path: Path, capsys) -> None:
    """A surgeon's change (the other separation alternative, a wider separation and a thicker
    implant) re-runs only the stages it touches, and the plan follows it."""
    ph = make_phantom_case(spacing=SPACING)
    out = tmp_path / "case"
    assert _plan(ph / "ct.nii.gz", out) == 0
    assert read_json(out / "plan.json")["separation"]["chosen"] == "min_risk"

    assert _plan(ph / "ct.nii.gz", out, "--choose", "sinus-to-b") == 0
    status = _timings(out)
    assert status["identify"] == "skipped" and status["separate"] == "ran", status
    assert read_json(out / "plan.json")["separation"]["chosen"] == "sinus_to_b"

    settings = tmp_path / "reconstruction.yaml"
    settings.write_text("separation_distance_mm: 60\nimplant:\n  thickness_mm: 3.0\n")
    assert _plan(ph / "ct.nii.gz", out, "--choose", "sinus-to-b",
                 "--reconstruction", str(settings)) == 0
    status = _timings(out)
    assert status["separate"] == "skipped" and status["simulate"] == "ran", status
    rec = read_json(out / "plan.json")["reconstruction"]
    assert rec["separation_distance_mm"] == 60.0
    assert {t["implant"]["thickness_mm"] for t in rec["cranium"]["twins"].values()} == {3.0}

    # a misspelt key is bad input: one line, exit 2, the earlier results intact
    settings.write_text("separation_distanse_mm: 60\n")
    capsys.readouterr()
    assert _plan(ph / "ct.nii.gz", out, "--choose", "sinus-to-b",
                 "--reconstruction", str(settings)) == 2
    assert "separation_distanse_mm" in capsys.readouterr().err
    assert read_json(out / "plan.json")["reconstruction"]["separation_distance_mm"] == 60.0
    assert _plan(ph / "ct.nii.gz", out, "--reconstruction", str(tmp_path / "nope.yaml")) == 2
