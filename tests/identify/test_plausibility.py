"""Plausibility: a scan that is not two children's heads is refused, not planned."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from twinsep.casefolder import Case, read_json
from twinsep.cli import main
from twinsep.errors import InputError
from twinsep.identify.plausibility import PlausibleRanges, check_plausibility
from twinsep.image import Volume
from twinsep.labels import Tissue

DATA = Path(__file__).resolve().parents[1] / "data"
SKULL_PHANTOM = DATA / "skull_phantom_ct" / "ct_2mm.nii.gz"
COLIN_T1 = Path("/work/shared/data/real-heads/colin27_t1_1mm.nii.gz")
COLIN_LABELS = Path("/work/shared/data/real-heads/colin27_lausanne2018_scale1_labels.nii.gz")


# --- the phantoms are two children's heads ----------------------------------------------------
@pytest.mark.parametrize("spec", [{"fusion": "total"}, {"fusion": "partial"},
                                  {"separate": True}])
@pytest.mark.parametrize("source", ["tissues", "ct"])
def test_phantoms_pass_every_check(spec, source, make_phantom_obj, make_identity,
                                   make_segmentation) -> None:
    if source == "ct" and spec.get("separate"):
        pytest.skip("at 2 mm the CT segmentation closes the 10 mm gap (tests/test_end_to_end)")
    ph = make_phantom_obj(**spec)
    tissues = ph.tissues if source == "tissues" else make_segmentation(**spec)
    res = make_identity(source, **spec)
    out = check_plausibility(tissues, res.owner, ct=ph.ct, conjoined=res.conjoined)
    assert out.passed, [c.describe() for c in out.failed]
    names = {c.name for c in out.checks}
    assert {"brain_ml", "head_length_mm", "bone_to_brain", "brain_hu",
            "intracranial_air"} <= names
    assert ("brain_spacing" in names) == res.conjoined
    brains = [c.value for c in out.checks if c.name == "brain_ml"]
    assert len(brains) == 2 and all(400 < v < 1000 for v in brains)  # measured 620-675 ml


def test_every_range_is_a_range_with_a_description() -> None:
    r = PlausibleRanges()
    for name, f in PlausibleRanges.model_fields.items():
        low, high = getattr(r, name)
        assert low < high, name
        assert f.description, name


# --- one head is not two ----------------------------------------------------------------------
def _one_child_head(spacing: float = 2.0) -> Volume:
    """One head: an ellipsoidal brain (about 600 ml) in CSF, a 3 mm skull, 4 mm scalp."""
    n = 110
    c = (np.indices((n, n, n)).astype(float) - n / 2) * spacing
    semi = np.array([52.0, 60.0, 46.0])  # z, y, x in mm

    def inside(extra: float) -> np.ndarray:
        return ((c[0] / (semi[0] + extra)) ** 2 + (c[1] / (semi[1] + extra)) ** 2
                + (c[2] / (semi[2] + extra)) ** 2) <= 1.0

    t = np.zeros((n, n, n), np.uint8)
    t[inside(9.0)] = Tissue.SCALP
    t[inside(5.0)] = Tissue.BONE
    t[inside(2.0)] = Tissue.CSF
    t[inside(0.0)] = Tissue.BRAIN
    return Volume(t, (0.0, 0.0, 0.0), (spacing,) * 3)


def test_one_head_cut_in_two_fails_the_spacing_check() -> None:
    """Seeds placed in one brain split it into two 'brains': the centres lie about a third
    of a head length apart, and the spacing check (not the volumes) refuses it."""
    from twinsep.identify.identity import identify

    tissues = _one_child_head()
    centre = tissues.index_to_world(np.array([55.0, 55.0, 55.0]))
    offset = np.array([0.0, 25.0, 0.0])
    res = identify(tissues, seed_a_mm=centre + offset, seed_b_mm=centre - offset)
    assert res.conjoined
    out = check_plausibility(tissues, res.owner)
    assert [c.name for c in out.failed] == ["brain_spacing"]
    spacing = next(c for c in out.checks if c.name == "brain_spacing")
    assert spacing.value < 0.4
    assert all(c.passed for c in out.checks if c.name == "brain_ml")  # 2 x ~300 ml


@pytest.mark.skipif(not (COLIN_T1.is_file() and COLIN_LABELS.is_file()),
                    reason="Colin27 (/work/shared/data/real-heads) not here")
def test_colin27_one_adult_head_refused() -> None:
    """One real adult head (Colin27; its label map's brain, the T1's head as scalp): split
    automatically (at 1 mm: 761 + 340 ml), refused by the spacing of the two "brains" (0.33)."""
    from scipy import ndimage as ndi

    from twinsep.identify.identity import identify

    t1 = Volume.read(COLIN_T1)
    lab = Volume.read(COLIN_LABELS)
    head = ndi.binary_fill_holes(ndi.binary_closing(np.asarray(t1.array) > 20, iterations=3))
    brain = ndi.binary_fill_holes(ndi.binary_closing(np.asarray(lab.array) > 0, iterations=4))
    t = np.zeros(head.shape, np.uint8)
    t[head] = Tissue.SCALP
    t[brain] = Tissue.BRAIN
    # every second voxel (2 mm): the same verdict in a sixth of the time
    tissues = Volume(t[::2, ::2, ::2], t1.origin, tuple(2 * s for s in t1.spacing),
                     t1.direction)
    res = identify(tissues)
    # the map has no skull, so only the brain-based checks are asked here
    ranges = PlausibleRanges(bone_to_brain=(0.0, 1.0))
    out = check_plausibility(tissues, res.owner, conjoined=res.conjoined, ranges=ranges)
    assert [c.name for c in out.failed] == ["brain_spacing"]
    assert next(c for c in out.checks if c.name == "brain_spacing").value < 0.38


# --- a real CT of one plastic skull phantom ---------------------------------------------------
@pytest.fixture(scope="module")
def skull_phantom_case(tmp_path_factory) -> Path:
    """The skull phantom ingested and segmented (read-only: copy before changing)."""
    case = tmp_path_factory.mktemp("skull") / "case"
    assert main(["--quiet", "ingest", str(SKULL_PHANTOM), "--out", str(case)]) == 0
    assert main(["--quiet", "segment", str(case)]) == 0
    return case


def test_skull_phantom_ct_refused(skull_phantom_case, tmp_path, capsys) -> None:
    case = tmp_path / "case"
    shutil.copytree(skull_phantom_case, case)
    capsys.readouterr()
    assert main(["--quiet", "identify", str(case)]) == 2
    err = capsys.readouterr().err
    line = " ".join(err.split())
    assert "not two children's heads" in line
    for failed in ("twin B brain", "bone/brain", "brain median", "brains' centres"):
        assert failed in line, failed
    assert "identify.plausibility=false" in line and "identify.plausible.brain_ml=" in line
    assert not Case(case).twins.exists()  # refused before anything was written
    assert "identity" not in read_json(Case(case).plan)


def test_skull_phantom_ct_checks(skull_phantom_case) -> None:
    """The figures that refuse it (measured: brain 108 + 6 ml, bone/brain 1.7, plastic at
    94 HU, centres 0.35 of a head length apart)."""
    from twinsep.identify.identity import identify

    tissues = Volume.read(Case(skull_phantom_case).tissues)
    ct = Volume.read(Case(skull_phantom_case).scan)
    res = identify(tissues)
    out = check_plausibility(tissues, res.owner, ct=ct, conjoined=res.conjoined)
    failed = {(c.name, c.twin) for c in out.failed}
    assert {("brain_ml", "A"), ("brain_ml", "B"), ("bone_to_brain", None),
            ("brain_hu", None), ("brain_spacing", None)} <= failed
    hu = next(c for c in out.checks if c.name == "brain_hu")
    assert hu.value > 80
    assert sum(c.value for c in out.checks if c.name == "brain_ml") < 140


def test_skull_phantom_planned_when_checks_off(skull_phantom_case, tmp_path) -> None:
    case = tmp_path / "case"
    shutil.copytree(skull_phantom_case, case)
    assert main(["--quiet", "identify", str(case), "--set", "plausibility=false"]) == 0
    plan = read_json(Case(case).plan)
    checks = plan["identity"]["plausibility"]
    assert checks["passed"] is False
    assert any(c["name"] == "brain_hu" and not c["passed"] for c in checks["checks"])


def test_widened_ranges_let_it_through(skull_phantom_case, tmp_path) -> None:
    """Each range is a setting: widening every failed one lets the scan through."""
    case = tmp_path / "case"
    shutil.copytree(skull_phantom_case, case)
    sets = ["plausible.brain_ml=[1,2000]", "plausible.bone_to_brain=[0,5]",
            "plausible.brain_hu=[0,200]", "plausible.brain_spacing=[0.1,2]"]
    args = ["--quiet", "identify", str(case)]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    assert read_json(Case(case).plan)["identity"]["plausibility"]["passed"] is True


def test_case_layer_raises_input_error(skull_phantom_case, tmp_path) -> None:
    from twinsep.identify import identify_case

    case = tmp_path / "case"
    shutil.copytree(skull_phantom_case, case)
    with pytest.raises(InputError, match="not two children's heads"):
        identify_case(Case(case))


# --- two separate heads -----------------------------------------------------------------------
def test_two_separate_heads_are_not_conjoined(phantom_separate_case, tmp_path) -> None:
    """Two separate heads are 'not conjoined' (with their distance), never 'one head'; each
    is checked as a child's head."""
    case = tmp_path / "case"
    case.mkdir()
    shutil.copy(phantom_separate_case / "ct.nii.gz", case / "scan.nii.gz")
    (case / "labels").mkdir()
    shutil.copy(phantom_separate_case / "tissues.nii.gz", case / "labels" / "tissues.nii.gz")
    assert main(["--quiet", "identify", str(case)]) == 0
    plan = json.loads((case / "plan.json").read_text())
    assert plan["conjoined"] is False and plan["closest_distance_mm"] > 5
    checks = plan["identity"]["plausibility"]
    assert checks["passed"] is True
    assert sorted(c["twin"] for c in checks["checks"] if c["name"] == "brain_ml") == ["A", "B"]
    assert not any(c["name"] == "brain_spacing" for c in checks["checks"])


def test_not_conjoined_summary_line(phantom_separate_case, tmp_path) -> None:
    from twinsep.identify.case import STAGE, IdentifySettings
    from twinsep.progress import silent

    case = tmp_path / "case"
    case.mkdir()
    shutil.copy(phantom_separate_case / "ct.nii.gz", case / "scan.nii.gz")
    (case / "labels").mkdir()
    shutil.copy(phantom_separate_case / "tissues.nii.gz", case / "labels" / "tissues.nii.gz")
    res = STAGE.run(Case(case), IdentifySettings(), silent)
    assert res.summary.startswith("not conjoined: two separate heads ")
    assert res.summary.endswith(" mm apart")
