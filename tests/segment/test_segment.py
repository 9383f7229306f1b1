"""Tissue segmentation from CT and import of label maps (``twinsep segment``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from twinsep.casefolder import Case, read_json, sha256_file
from twinsep.cli import main
from twinsep.image import Volume, resample_like
from twinsep.labels import Owner, Tissue


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(int(a.sum()) + int(b.sum()), 1)


def _bridges(vessel: np.ndarray, owner: np.ndarray) -> int:
    """Number of vessel components holding voxels of both twin A and twin B."""
    from scipy import ndimage as ndi

    lab, _ = ndi.label(vessel, structure=np.ones((3, 3, 3), bool))
    a = set(np.unique(lab[(owner == Owner.A) & vessel]).tolist())
    b = set(np.unique(lab[(owner == Owner.B) & vessel]).tolist())
    return len((a & b) - {0})


def _make_case(root: Path, ct: Volume) -> Case:
    case = Case(root)
    root.mkdir(parents=True, exist_ok=True)
    ct.write(case.scan)
    return case


# --- segmentation from the CT ---------------------------------------------------------------
# Measured at 2 mm (phantom defaults, seed 0): scalp 0.997, bone 1.000, CSF 0.904,
# brain 0.973, vessel 1.000 (total); partial and angular within 0.005 of these.
MIN_DICE = {Tissue.SCALP: 0.98, Tissue.BONE: 0.98, Tissue.CSF: 0.86, Tissue.BRAIN: 0.96,
            Tissue.VESSEL: 0.93}


@pytest.fixture(scope="module")
def seg_total(make_segmentation):
    """``segment_ct(phantom_total.ct)`` (the session's, shared with the identify tests)."""
    return make_segmentation(fusion="total")


@pytest.fixture(scope="module")
def seg_partial(make_segmentation):
    """``segment_ct(phantom_partial.ct)`` (the session's)."""
    return make_segmentation(fusion="partial")


@pytest.mark.parametrize("which", ["total", "partial"])
def test_dice_per_tissue(which, phantom_total, phantom_partial, seg_total, seg_partial):
    ph, seg = (phantom_total, seg_total) if which == "total" else (phantom_partial, seg_partial)
    assert seg.array.dtype == np.uint8
    assert seg.same_grid(ph.ct)
    truth = ph.tissues.array
    for code, floor in MIN_DICE.items():
        d = _dice(seg.array == code, truth == code)
        assert d >= floor, f"{which} {code.name}: Dice {d:.3f} < {floor}"


def test_shared_sinus_found_when_present(phantom_total, seg_total):
    owner = phantom_total.owner.array
    truth_vessel = phantom_total.tissues.array == Tissue.VESSEL
    assert _bridges(truth_vessel, owner) >= 1  # the phantom has a shared sinus
    vessel = seg_total.array == Tissue.VESSEL
    assert _bridges(vessel, owner) >= 1
    # the shared part (ring and connectors) is found, not only the sagittal sinuses
    near_junction = owner == Owner.AMBIGUOUS
    shared_truth = truth_vessel & near_junction
    assert shared_truth.sum() > 0
    assert (vessel & shared_truth).sum() >= 0.8 * shared_truth.sum()


def test_no_vessel_crossing_without_shared_sinus(phantom_partial, seg_partial, make_phantom_obj,
                                                 make_segmentation):
    owner = phantom_partial.owner.array
    assert _bridges(phantom_partial.tissues.array == Tissue.VESSEL, owner) == 0
    assert _bridges(seg_partial.array == Tissue.VESSEL, owner) == 0
    # a total fusion without the circular sinus: brains touch, no vessel may cross
    ph = make_phantom_obj(fusion="total", shared_sinus=False)
    seg = make_segmentation(fusion="total", shared_sinus=False).array  # segment_ct(ph.ct)
    assert _bridges(ph.tissues.array == Tissue.VESSEL, ph.owner.array) == 0
    assert _bridges(seg == Tissue.VESSEL, ph.owner.array) == 0
    assert _dice(seg == Tissue.VESSEL, ph.tissues.array == Tissue.VESSEL) >= 0.9


def test_oblique_anisotropic_phantom(make_phantom_obj):
    from twinsep.segment import segment_ct

    ph = make_phantom_obj(fusion="total", oblique=30.0, spacing=(1.8, 1.8, 3.2))
    seg = segment_ct(ph.ct)
    assert seg.same_grid(ph.ct)
    truth = ph.tissues.array
    # measured: scalp 0.997, bone 1.000, CSF 0.896, brain 0.971, vessel 0.997
    for code, floor in [(Tissue.SCALP, 0.98), (Tissue.BONE, 0.98), (Tissue.BRAIN, 0.95),
                        (Tissue.VESSEL, 0.95)]:
        d = _dice(seg.array == code, truth == code)
        assert d >= floor, f"{code.name}: Dice {d:.3f} < {floor}"
    assert _bridges(seg.array == Tissue.VESSEL, ph.owner.array) >= 1


# The fine anisotropic grid of a real venogram: the sinuses lie against the skull, so
# the blurred bone's spill and the bone/contrast edge decide the vessel's edge voxels.
FINE_OBLIQUE = {"fusion": "total", "oblique": 30.0, "spacing": (0.9, 0.9, 1.6)}


@pytest.mark.slow
def test_oblique_anisotropic_fine_grid(make_phantom_obj):
    from twinsep.segment import segment_ct

    ph = make_phantom_obj(**FINE_OBLIQUE)
    seg = segment_ct(ph.ct)
    assert seg.same_grid(ph.ct)
    truth = ph.tissues.array
    # measured: scalp 0.997, bone 0.997, CSF 0.895, brain 0.973, vessel 0.941
    for code, floor in [(Tissue.SCALP, 0.99), (Tissue.BONE, 0.99), (Tissue.CSF, 0.88),
                        (Tissue.BRAIN, 0.96), (Tissue.VESSEL, 0.92)]:
        d = _dice(seg.array == code, truth == code)
        assert d >= floor, f"{code.name}: Dice {d:.3f} < {floor}"
    owner = ph.owner.array
    assert _bridges(truth == Tissue.VESSEL, owner) >= 1
    assert _bridges(seg.array == Tissue.VESSEL, owner) >= 1


@pytest.mark.slow
def test_no_vessel_crossing_without_shared_sinus_1mm(make_phantom_obj):
    from twinsep.segment import segment_ct

    ph = make_phantom_obj(fusion="total", shared_sinus=False, spacing=1.0)
    seg = segment_ct(ph.ct).array
    owner = ph.owner.array
    assert _bridges(ph.tissues.array == Tissue.VESSEL, owner) == 0
    assert _bridges(seg == Tissue.VESSEL, owner) == 0
    # measured 0.897
    assert _dice(seg == Tissue.VESSEL, ph.tissues.array == Tissue.VESSEL) >= 0.88


def test_settings_documented_and_validated():
    from pydantic import ValidationError

    from twinsep.segment import CTSettings

    s = CTSettings()
    for name, f in CTSettings.model_fields.items():
        assert f.description, f"setting {name} has no description"
    assert s.bone_min_hu > 280  # contrast vessels must not become bone
    with pytest.raises(ValidationError):
        CTSettings(bone_peak_fraction=1.5)
    with pytest.raises(ValidationError):
        CTSettings(no_such_setting=1)


def test_no_head_is_an_input_error():
    from twinsep.errors import InputError
    from twinsep.segment import segment_ct

    with pytest.raises(InputError):
        segment_ct(Volume(np.full((8, 8, 8), 40, np.int16)))


# --- the command on a case folder ------------------------------------------------------------
def test_segment_command_writes_labels_and_plan(tmp_path, phantom_total, seg_total, capsys):
    case = _make_case(tmp_path / "case", phantom_total.ct)
    assert main(["segment", str(case.root)]) == 0
    out = Volume.read(case.tissues)
    assert out.array.dtype == np.uint8
    assert out.same_grid(phantom_total.ct)
    np.testing.assert_array_equal(out.array, seg_total.array)  # deterministic
    sec = read_json(case.plan)["segmentation"]
    assert sec["source"] == "ct"
    assert sec["settings"]["bone_min_hu"] == 400.0
    assert sec["inputs"]["scan_sha256"] == sha256_file(case.scan)
    n_brain = int((seg_total.array == Tissue.BRAIN).sum())
    assert sec["tissues"]["brain"]["voxels"] == n_brain
    assert sec["tissues"]["brain"]["volume_ml"] == pytest.approx(
        n_brain * phantom_total.ct.voxel_volume_ml, rel=1e-6)
    assert not [p for p in case.labels.iterdir() if p.name.startswith(".")]  # no temp left


# --- import ------------------------------------------------------------------------------------
@pytest.fixture()
def small_case(tmp_path) -> tuple[Case, Volume]:
    """A small scan on an oblique anisotropic grid and a label map on the same grid."""
    rng = np.random.default_rng(0)
    d = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    scan = Volume(rng.normal(0, 10, (12, 16, 20)).astype(np.int16), (5.0, -3.0, 2.0),
                  (1.0, 1.2, 2.0), tuple(d.ravel()))
    case = _make_case(tmp_path / "case", scan)
    labels = np.zeros(scan.shape, np.uint8)
    labels[2:10, 3:13, 4:16] = Tissue.SCALP
    labels[3:9, 5:11, 6:14] = Tissue.BONE
    labels[4:8, 6:10, 8:12] = Tissue.BRAIN
    labels[5:7, 7:9, 9:11] = Tissue.VESSEL
    return case, scan.with_array(labels)


def _fail(argv: list[str], case: Case, capsys) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:")
    assert len(err.splitlines()) == 1, err
    assert not case.tissues.exists()
    assert not case.plan.exists()
    return err


def test_import_same_grid(small_case, tmp_path):
    case, labels = small_case
    src = tmp_path / "seg.nrrd"
    labels.write(src)
    before = sha256_file(src)
    assert main(["segment", str(case.root), "--tissues", str(src)]) == 0
    np.testing.assert_array_equal(Volume.read(case.tissues).array, labels.array)
    assert sha256_file(src) == before  # input untouched
    sec = read_json(case.plan)["segmentation"]
    assert sec["source"] == "import"
    assert sec["inputs"]["tissues_sha256"] == before
    assert sec["tissues"]["vessel"]["voxels"] == int((labels.array == 5).sum())


def test_import_with_label_map(small_case, tmp_path):
    case, labels = small_case
    lut = np.array([0, 11, 12, 13, 14, 17], np.int16)  # source codes of another tool
    src = tmp_path / "seg.nii.gz"
    labels.with_array(lut[labels.array]).write(src)
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"11": 1, "12": 2, "13": 3, "14": 4, "17": 5}))
    args = ["segment", str(case.root), "--tissues", str(src), "--label-map", str(mapping)]
    assert main(args) == 0
    np.testing.assert_array_equal(Volume.read(case.tissues).array, labels.array)
    assert read_json(case.plan)["segmentation"]["label_map"]["17"] == 5


def test_import_resamples_another_grid(small_case, tmp_path):
    case, labels = small_case
    # the same labels on a finer, shifted, axis-aligned grid
    fine = Volume(np.zeros((30, 30, 30), np.uint8), (-12.0, -8.0, -4.0), (0.8, 0.8, 0.9))
    moved = resample_like(labels, fine, nearest=True)
    assert moved.array.any()
    src = tmp_path / "fine.mha"
    moved.write(src)
    assert main(["segment", str(case.root), "--tissues", str(src)]) == 0
    out = Volume.read(case.tissues)
    assert out.same_grid(Volume.read(case.scan))
    for code in (Tissue.SCALP, Tissue.BONE, Tissue.BRAIN):
        assert _dice(out.array == code, labels.array == code) > 0.7


def test_import_refuses_non_overlapping_grid(small_case, tmp_path, capsys):
    case, labels = small_case
    far = Volume(labels.array, (500.0, 500.0, 500.0), labels.spacing, labels.direction)
    src = tmp_path / "far.nii.gz"
    far.write(src)
    err = _fail(["segment", str(case.root), "--tissues", str(src)], case, capsys)
    assert "overlap" in err


def test_import_no_resample_refuses_other_grid(small_case, tmp_path, capsys):
    case, labels = small_case
    shifted = Volume(labels.array, tuple(v + 1.0 for v in labels.origin), labels.spacing,
                     labels.direction)
    src = tmp_path / "shifted.nii.gz"
    shifted.write(src)
    err = _fail(["segment", str(case.root), "--tissues", str(src), "--no-resample"], case,
                capsys)
    assert "--no-resample" in err


def test_import_empty_map_refused(small_case, tmp_path, capsys):
    case, labels = small_case
    src = tmp_path / "empty.nii.gz"
    labels.with_array(np.zeros(labels.shape, np.uint8)).write(src)
    assert "empty" in _fail(["segment", str(case.root), "--tissues", str(src)], case, capsys)


def test_import_codes_outside_range_refused(small_case, tmp_path, capsys):
    case, labels = small_case
    arr = labels.array.astype(np.int16)
    arr[arr == 5] = 42
    src = tmp_path / "odd.nii.gz"
    labels.with_array(arr).write(src)
    err = _fail(["segment", str(case.root), "--tissues", str(src)], case, capsys)
    assert "42" in err
    # a map that misses a code is refused too
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"1": 1, "2": 2, "4": 4}))
    err = _fail(["segment", str(case.root), "--tissues", str(src), "--label-map", str(mapping)],
                case, capsys)
    assert "42" in err
    # a map onto a code that twinsep does not have is refused
    mapping.write_text(json.dumps({"1": 1, "2": 2, "4": 4, "42": 9}))
    _fail(["segment", str(case.root), "--tissues", str(src), "--label-map", str(mapping)],
          case, capsys)


def test_label_map_without_tissues_refused(small_case, tmp_path, capsys):
    case, _ = small_case
    mapping = tmp_path / "map.json"
    mapping.write_text("{}")
    _fail(["segment", str(case.root), "--label-map", str(mapping)], case, capsys)


def test_missing_scan_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    _fail(["segment", str(tmp_path / "empty")], Case(tmp_path / "empty"), capsys)


# --- not a CT ----------------------------------------------------------------------------------
COLIN_T1 = Path("/work/shared/data/real-heads/colin27_t1_1mm.nii.gz")


def test_mr_modality_refused_with_what_to_do(tmp_path, phantom_total, capsys):
    """A DICOM series whose Modality is MR is named as MR, with what to do."""
    case = _make_case(tmp_path / "case", phantom_total.ct)  # HU values: only the tag says MR
    case.case_json.write_text(json.dumps({"source": {"format": "dicom-series",
                                                     "modality": "MR"}}))
    err = " ".join(_fail(["segment", str(case.root)], case, capsys).split())
    assert "the scan is MR (DICOM Modality MR)" in err
    assert "Hounsfield units" in err and "--series" in err and "--tissues FILE" in err


def test_ct_modality_and_unknown_modality_segmented(tmp_path, phantom_total):
    from twinsep.segment.case import check_modality, scan_modality

    case = _make_case(tmp_path / "case", phantom_total.ct)
    assert scan_modality(case) is None  # no case.json
    case.case_json.write_text(json.dumps({"source": {"format": "nifti"}}))
    assert scan_modality(case) is None
    case.case_json.write_text(json.dumps({"source": {"modality": "CT"}}))
    assert scan_modality(case) == "CT"
    check_modality("CT")
    check_modality(None)
    from twinsep.errors import InputError

    with pytest.raises(InputError, match=r"the scan is PET \(DICOM Modality PT\)"):
        check_modality("PT")


def test_mr_with_imported_tissues_accepted(small_case, tmp_path):
    """An imported label map needs no CT: an MR case may import one."""
    case, labels = small_case
    src = tmp_path / "labels.nii.gz"
    labels.write(src)
    case.case_json.write_text(json.dumps({"source": {"modality": "MR"}}))
    assert main(["segment", str(case.root), "--tissues", str(src)]) == 0
    np.testing.assert_array_equal(Volume.read(case.tissues).array, labels.array)


def test_values_that_cannot_be_hu_refused():
    from twinsep.errors import InputError
    from twinsep.segment import segment_ct
    from twinsep.segment.core import check_ct_hu

    rng = np.random.default_rng(0)
    mr = Volume(rng.integers(0, 193, (20, 20, 20)).astype(np.int16))  # like a T1: 0-192
    with pytest.raises(InputError, match="not CT Hounsfield units") as info:
        segment_ct(mr)
    assert "--tissues FILE" in str(info.value) and "\n" not in str(info.value)
    zscored = Volume(rng.normal(0, 1, (20, 20, 20)).astype(np.float32))  # a processed MR
    with pytest.raises(InputError, match="not CT Hounsfield units"):
        check_ct_hu(zscored.array)
    # a handful of air voxels (0.1 %, under 0.5 %) is not a CT's air around the head
    few = np.full((10, 10, 100), 40, np.int16)
    few.flat[:10] = -1000
    with pytest.raises(InputError, match="not CT Hounsfield units"):
        check_ct_hu(few)
    from twinsep.segment import CTSettings

    check_ct_hu(few, CTSettings(min_air_fraction=0.0))  # turned off
    check_ct_hu(few, CTSettings(min_air_fraction=0.0005))


def test_phantom_ct_is_hu(phantom_total, phantom_partial):
    from twinsep.segment.core import air_fraction, check_ct_hu

    for ph in (phantom_total, phantom_partial):
        check_ct_hu(ph.ct.array)
        assert air_fraction(ph.ct.array, -500.0) > 0.3  # measured 0.62


@pytest.mark.skipif(not COLIN_T1.is_file(), reason="Colin27 (/work/shared/data) not here")
def test_colin27_t1_refused_as_not_hu(tmp_path, capsys):
    """A real MR given as NIfTI (modality unknown): refused by its values."""
    out = tmp_path / "case"
    assert main(["--quiet", "ingest", str(COLIN_T1), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["segment", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "not CT Hounsfield units" in err and "0 % of the voxels below -500 HU" in err
