"""``twinsep ingest``: round trips, series choice, resampling, bad input and PHI."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from twinsep.casefolder import sha256_array, sha256_file
from twinsep.cli import main
from twinsep.deid import pseudonym
from twinsep.errors import InputError
from twinsep.exchange.dicom import write_ct_series, write_enhanced_ct
from twinsep.image import Volume
from twinsep.ingest.read import ingest

TOL_MM = 1e-3


def _oblique(shape=(7, 5, 4), seed=0) -> Volume:
    """Oblique, anisotropic int16 HU volume (rotation about an oblique axis)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-1024, 3000, size=shape).astype(np.int16)
    rot = Rotation.from_rotvec(0.6 * np.array([1.0, 2.0, 3.0]) / np.sqrt(14)).as_matrix()
    return Volume(a, (10.25, -20.5, 30.125), (0.7, 0.9, 1.6), rot.ravel())


def _assert_same(stored: Volume, vol: Volume) -> None:
    assert stored.shape == vol.shape
    np.testing.assert_array_equal(stored.array, vol.array)
    np.testing.assert_allclose(stored.origin, vol.origin, atol=TOL_MM)
    np.testing.assert_allclose(stored.spacing, vol.spacing, atol=TOL_MM)
    np.testing.assert_allclose(stored.direction, vol.direction, atol=1e-5)


def _tree_hash(path: Path) -> dict[str, str]:
    if path.is_file():
        return {path.name: sha256_file(path)}
    return {str(p.relative_to(path)): sha256_file(p) for p in sorted(path.rglob("*"))
            if p.is_file()}


def _run(scan: Path, out: Path, *args: str) -> int:
    before = _tree_hash(scan)
    code = main(["ingest", str(scan), "--out", str(out), *args])
    assert _tree_hash(scan) == before  # the input is never modified
    return code


# --- round trips ----------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"])
def test_itk_formats_round_trip(tmp_path, suffix):
    vol = _oblique()
    src = tmp_path / f"in{suffix}"
    vol.write(src)
    assert _run(src, tmp_path / "case") == 0
    stored = Volume.read(tmp_path / "case" / "scan.nii.gz")
    _assert_same(stored, vol)
    info = json.loads((tmp_path / "case" / "case.json").read_text())
    assert info["source"]["format"] in {"nifti", "nrrd", "metaimage"}
    assert info["source"]["file_count"] == (2 if suffix == ".mhd" else 1)
    assert info["hashes"]["scan_array_sha256"] == sha256_array(stored.array)
    assert info["hashes"]["input_files"][0]["sha256"] == sha256_file(src)
    assert info["pixel_type"] == "int16" and "phi" not in info
    np.testing.assert_allclose(info["geometry"]["origin_mm"], vol.origin, atol=TOL_MM)


def test_float_nifti_keeps_values_and_type(tmp_path):
    vol = Volume(np.linspace(-1, 1, 60, dtype=np.float32).reshape(3, 4, 5), (1, 2, 3),
                 (2.0, 1.0, 0.5), (-1, 0, 0, 0, -1, 0, 0, 0, 1))
    vol.write(tmp_path / "f.nii.gz")
    res = ingest(tmp_path / "f.nii.gz", tmp_path / "case")
    _assert_same(res.volume, vol)
    assert res.info["pixel_type"] == "float32" and res.info["rescale"] is None


def test_dicom_series_round_trip_oblique(tmp_path):
    vol = _oblique()
    write_ct_series(vol, tmp_path / "dcm" / "nested", study_date="20240301")
    assert _run(tmp_path / "dcm", tmp_path / "case") == 0  # searched recursively
    stored = Volume.read(tmp_path / "case" / "scan.nii.gz")
    assert stored.array.dtype == np.int16
    _assert_same(stored, vol)
    info = json.loads((tmp_path / "case" / "case.json").read_text())
    src = info["source"]
    assert src["format"] == "dicom-series" and src["file_count"] == 7
    assert src["modality"] == "CT"
    # no date, no UID: a pseudonym names the series (issue 14 item 3)
    assert "study_date" not in src and "series_uid" not in src
    assert src["series_pseudonym"].startswith("2.25.")
    assert info["rescale"] == {"applied": True, "intercept": -1024.0, "slope": 1.0,
                               "type": "HU"}
    assert info["resampling"] is None and len(info["hashes"]["input_files"]) == 7


def test_compressed_and_preamble_less_dicom(tmp_path):
    """RLE Lossless pixels (decoded by GDCM) and files without the 128-byte preamble."""
    from pydicom.uid import RLELossless

    vol = _oblique(shape=(4, 16, 16))  # GDCM's RLE decoder fails on 4-pixel rows
    files = write_ct_series(vol, tmp_path / "dcm")
    for n, f in enumerate(files):
        ds = pydicom.dcmread(f)
        if n % 2:
            ds.compress(RLELossless, encoding_plugin="pydicom")
            ds.save_as(f, enforce_file_format=True)
        else:
            ds.preamble = None
            ds.save_as(f, enforce_file_format=False)
            assert f.read_bytes()[128:132] != b"DICM"
    res = ingest(tmp_path / "dcm", tmp_path / "case")
    _assert_same(res.volume, vol)
    assert RLELossless in res.info["source"]["transfer_syntaxes"]


def test_single_file_of_a_series_reads_the_whole_series(tmp_path):
    vol = _oblique()
    files = write_ct_series(vol, tmp_path / "dcm")
    res = ingest(files[3], tmp_path / "case")
    _assert_same(res.volume, vol)
    assert res.info["source"]["file_count"] == 7


def test_multiframe_file_read_whole_and_frames_sorted(tmp_path):
    vol = _oblique()
    path = write_enhanced_ct(vol, tmp_path / "mf.dcm", frame_order=[6, 4, 2, 0, 1, 3, 5])
    assert _run(path, tmp_path / "case") == 0
    stored = Volume.read(tmp_path / "case" / "scan.nii.gz")
    _assert_same(stored, vol)
    info = json.loads((tmp_path / "case" / "case.json").read_text())
    assert info["source"]["format"] == "dicom-multiframe"
    assert info["source"]["slice_count"] == 7


def test_dicom_left_handed_flip_keeps_world_positions(tmp_path):
    """k running against the slice normal: the stack is re-sorted, each voxel keeps its
    world position."""
    vol = Volume(_oblique().array, (5, 6, 7), (0.8, 0.8, 2.0),
                 (1, 0, 0, 0, 1, 0, 0, 0, -1))
    write_ct_series(vol, tmp_path / "dcm")
    res = ingest(tmp_path / "dcm", tmp_path / "case")
    np.testing.assert_array_equal(res.volume.array, vol.array[::-1])
    np.testing.assert_allclose(res.volume.index_to_world(np.array([6, 0, 0])),
                               vol.index_to_world(np.array([0, 0, 0])), atol=TOL_MM)


# --- several series -------------------------------------------------------------------
def _two_series(tmp_path: Path) -> tuple[Path, str, str]:
    folder = tmp_path / "study"
    big = _oblique(shape=(7, 5, 4))
    small = _oblique(shape=(3, 4, 4), seed=3)
    write_ct_series(big, folder / "a", series_uid="1.2.826.0.1.3680043.9.7777.1",
                    series_description="DOE^JANE big")
    write_ct_series(small, folder / "b", series_uid="1.2.826.0.1.3680043.9.7777.2",
                    series_description="DOE^JANE small")
    (folder / "readme.txt").write_text("not dicom")
    return folder, "1.2.826.0.1.3680043.9.7777.1", "1.2.826.0.1.3680043.9.7777.2"


def test_several_series_default_largest_and_says_so(tmp_path, capsys):
    folder, big, small = _two_series(tmp_path)
    assert _run(folder, tmp_path / "case") == 0
    err = capsys.readouterr().err
    assert pseudonym(big) in err and pseudonym(small) in err and "largest" in err
    # the series list holds no free text (the description carried the patient's name)
    # and no UID (pseudonyms name the series)
    assert "DOE" not in err and "series 1" in err and " mm " in err
    assert big not in err and small not in err
    info = json.loads((tmp_path / "case" / "case.json").read_text())
    assert info["source"]["series_pseudonym"] == pseudonym(big)
    assert info["source"]["series_in_scan"] == 2


@pytest.mark.parametrize("by", ["uid", "pseudonym", "series number"])
def test_series_option_takes_the_named_one(tmp_path, by):
    import pydicom

    folder, _big, small = _two_series(tmp_path)
    for path in (folder / "b").iterdir():  # series numbers are unique in an exam
        ds = pydicom.dcmread(path)
        ds.SeriesNumber = 2
        ds.save_as(path)
    name = {"uid": small, "pseudonym": pseudonym(small), "series number": "2"}[by]
    assert _run(folder, tmp_path / "case", "--series", name) == 0
    stored = Volume.read(tmp_path / "case" / "scan.nii.gz")
    assert stored.shape == (3, 4, 4)


def test_unknown_series_is_a_clear_error(tmp_path, capsys):
    folder, big, _small = _two_series(tmp_path)
    assert _run(folder, tmp_path / "case", "--series", "1.2.3.999") == 2
    err = capsys.readouterr().err
    assert "no one series matches --series" in err and pseudonym(big) in err
    assert big not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "case").exists()


# --- irregular stacks -----------------------------------------------------------------
def test_uneven_slice_spacing_is_resampled_and_recorded(tmp_path, capsys):
    vol = _oblique()
    files = write_ct_series(vol, tmp_path / "dcm")
    files[3].unlink()
    assert _run(tmp_path / "dcm", tmp_path / "case") == 0
    assert "resampled onto a regular grid" in capsys.readouterr().err
    stored = Volume.read(tmp_path / "case" / "scan.nii.gz")
    assert stored.same_grid(vol)
    keep = [0, 1, 2, 4, 5, 6]
    np.testing.assert_array_equal(stored.array[keep], vol.array[keep])
    mid = (vol.array[2].astype(float) + vol.array[4]) / 2
    assert np.abs(stored.array[3] - mid).max() <= 0.5 + 1e-9  # linear, rounded
    info = json.loads((tmp_path / "case" / "case.json").read_text())
    assert info["resampling"]["reason"] == ["uneven slice spacing"]
    assert info["resampling"]["method"] == "linear"
    assert info["resampling"]["source_slice_count"] == 6


def test_gantry_tilt_is_resampled(tmp_path, capsys):
    vol = Volume(np.zeros((5, 6, 4), dtype=np.int16) + 100, (0, 0, 0), (0.5, 0.5, 2.0))
    files = write_ct_series(vol, tmp_path / "dcm")
    for k, f in enumerate(files):  # shift each slice along the column direction
        ds = pydicom.dcmread(f)
        ds.ImagePositionPatient = [0.0, 0.5 * k, 2.0 * k]
        ds.save_as(f)
    res = ingest(tmp_path / "dcm", tmp_path / "case")
    assert any("gantry tilt" in n for n in res.notes)
    assert res.info["resampling"]["tilt_deg"] == pytest.approx(np.degrees(np.arctan(0.25)))
    assert res.volume.shape == (5, 6 + 4, 4)


def test_mixed_orientations_in_one_series_is_an_error(tmp_path, capsys):
    files = write_ct_series(_oblique(), tmp_path / "dcm")
    ds = pydicom.dcmread(files[2])
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.save_as(files[2])
    assert _run(tmp_path / "dcm", tmp_path / "case") == 2
    err = capsys.readouterr().err
    assert "different orientations" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "case").exists()


def test_mixed_sizes_in_one_series_is_an_error(tmp_path):
    vol = _oblique()
    write_ct_series(vol, tmp_path / "dcm", series_uid="1.2.3")
    write_ct_series(Volume(np.zeros((2, 3, 3), np.int16)), tmp_path / "dcm" / "x",
                    series_uid="1.2.3")
    with pytest.raises(InputError, match="different sizes"):
        ingest(tmp_path / "dcm", tmp_path / "case")


# --- bad input ------------------------------------------------------------------------
def _garbage_compressed(tmp_path: Path, ts: str) -> Path:
    from pydicom.encaps import encapsulate

    f = write_ct_series(_oblique(), tmp_path / "src")[0]
    ds = pydicom.dcmread(f)
    ds.file_meta.TransferSyntaxUID = ts
    ds.PixelData = encapsulate([b"\xff\xd8 not really compressed pixels " * 8])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    out = tmp_path / "bad.dcm"
    ds.save_as(out, enforce_file_format=True)
    # two frames' worth: a second copy with another position so it is not 2-D
    ds.ImagePositionPatient = [float(v) + 1 for v in ds.ImagePositionPatient]
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5"
    folder = tmp_path / "badseries"
    folder.mkdir()
    shutil.copy(out, folder / "a.dcm")
    ds.save_as(folder / "b.dcm", enforce_file_format=True)
    return folder


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Path] = {}
    text = tmp_path / "notes.txt"
    text.write_text("this is not an image\n" * 20)
    cases["text file"] = text
    vol = _oblique(shape=(20, 30, 30))
    vol.write(tmp_path / "full.nii.gz")
    data = (tmp_path / "full.nii.gz").read_bytes()
    (tmp_path / "half.nii.gz").write_bytes(data[: len(data) // 2])
    cases["truncated nii.gz"] = tmp_path / "half.nii.gz"
    raw = gzip.decompress(data)
    (tmp_path / "half.nii").write_bytes(raw[: len(raw) // 2])
    cases["truncated nii"] = tmp_path / "half.nii"
    files = write_ct_series(vol, tmp_path / "dcm")
    dcm = files[0].read_bytes()
    (tmp_path / "half.dcm").write_bytes(dcm[: len(dcm) // 2])
    cases["truncated dicom"] = tmp_path / "half.dcm"
    trunc = tmp_path / "truncseries"
    shutil.copytree(tmp_path / "dcm", trunc)
    (trunc / files[5].name).write_bytes(dcm[: len(dcm) - 500])
    cases["truncated slice in a series"] = trunc
    (tmp_path / "empty").mkdir()
    cases["empty folder"] = tmp_path / "empty"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((5, 6), np.int16)),
                    str(tmp_path / "flat.nii.gz"))
    cases["2-D nifti"] = tmp_path / "flat.nii.gz"
    one = write_ct_series(Volume(np.zeros((1, 5, 6), np.int16)), tmp_path / "one")[0]
    cases["2-D dicom"] = one
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.txt").write_text("hello")
    (junk / "b.bin").write_bytes(bytes(range(256)) * 4)
    (junk / "c.json").write_text("{}")
    cases["unrelated files"] = junk
    cases["garbage jpeg"] = _garbage_compressed(tmp_path / "j", "1.2.840.10008.1.2.4.50")
    cases["no decoder (MPEG2)"] = _garbage_compressed(tmp_path / "m",
                                                      "1.2.840.10008.1.2.4.100")
    sheared = sitk.GetImageFromArray(np.zeros((4, 5, 6), np.int16))
    sheared.SetDirection((1, 0, 0, 0.5, 1, 0, 0, 0, 1))
    sitk.WriteImage(sheared, str(tmp_path / "sheared.nrrd"))
    cases["sheared nrrd"] = tmp_path / "sheared.nrrd"
    cases["missing"] = tmp_path / "does-not-exist"
    return cases


def test_bad_inputs_one_line_exit_2_nothing_left(tmp_path, capfd):
    cases = _bad_inputs(tmp_path / "in")
    (tmp_path / "existing").mkdir()
    for n, (what, scan) in enumerate(cases.items()):
        out = tmp_path / ("existing" if n % 2 else f"out{n}")
        existed = out.exists()
        code = _run(scan, out) if scan.exists() else main(["ingest", str(scan), "--out",
                                                           str(out)])
        cap = capfd.readouterr()
        lines = cap.err.strip().splitlines()
        assert code == 2, what
        assert len(lines) == 1 and lines[0].startswith("error:"), (what, cap.err)
        assert str(scan.name) in lines[0], (what, lines[0])
        if existed:
            assert list(out.iterdir()) == [], what
        else:
            assert not out.exists(), what
        assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == [], what


def test_a_folder_twinsep_did_not_make_is_never_written(tmp_path):
    vol = _oblique()
    vol.write(tmp_path / "a.nii.gz")
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "keep.txt").write_text("x")
    for args in ((), ("--overwrite",)):  # --overwrite does not make it twinsep's
        assert _run(tmp_path / "a.nii.gz", tmp_path / "case", *args) == 2
        assert [p.name for p in (tmp_path / "case").iterdir()] == ["keep.txt"]
    # a case.json or a .twinsep/ of the user's does not make it a case either
    (tmp_path / "case" / "case.json").write_text("{}")
    (tmp_path / "case" / ".twinsep").mkdir()
    assert _run(tmp_path / "a.nii.gz", tmp_path / "case", "--overwrite") == 2
    assert sorted(p.name for p in (tmp_path / "case").iterdir()) == [
        ".twinsep", "case.json", "keep.txt"]
    assert (tmp_path / "case" / "case.json").read_text() == "{}"
    assert not any((tmp_path / "case" / ".twinsep").iterdir())


def test_reingest_replaces_only_twinseps_own_files(tmp_path):
    vol = _oblique()
    vol.write(tmp_path / "a.nii.gz")
    case = tmp_path / "case"
    assert _run(tmp_path / "a.nii.gz", case) == 0
    # the scan, its description, the marker and the case's log
    assert sorted(p.name for p in case.iterdir()) == [".twinsep", "case.json", "scan.nii.gz"]
    assert sorted(p.name for p in (case / ".twinsep").iterdir()) == [
        "case-format.json", "twinsep.log"]
    marker = json.loads((case / ".twinsep" / "case-format.json").read_text())
    assert marker["made_by"] == "twinsep" and marker["kind"] == "case"
    assert _run(tmp_path / "a.nii.gz", case) == 2  # a case: replaced only with --overwrite
    (case / "my-notes.txt").write_text("mine")
    (case / "figures").mkdir()
    (case / "figures" / "old.png").write_bytes(b"png")
    assert _run(tmp_path / "a.nii.gz", case, "--overwrite") == 0
    assert (case / "my-notes.txt").read_text() == "mine"
    assert not (case / "figures").exists()  # twinsep's own entry: replaced
    assert sorted(p.name for p in (case / ".twinsep").iterdir()) == [
        "case-format.json", "twinsep.log"]


@pytest.mark.parametrize("where", ["out holds the scan", "out is the DICOM folder",
                                   "out inside the DICOM folder"])
def test_input_inside_out_is_refused(tmp_path, where):
    dcm = tmp_path / "study" / "dcm"
    write_ct_series(_oblique(), dcm)
    before = _tree_hash(tmp_path / "study")
    scan, out = {"out holds the scan": (dcm, tmp_path / "study"),
                 "out is the DICOM folder": (dcm, dcm),
                 "out inside the DICOM folder": (dcm, dcm / "case")}[where]
    for args in ((), ("--overwrite",)):
        assert main(["ingest", str(scan), "--out", str(out), *args]) == 2
        assert _tree_hash(tmp_path / "study") == before
        assert not (dcm / "case").exists()


def test_symlinked_out_is_written_through(tmp_path):
    vol = _oblique()
    vol.write(tmp_path / "a.nii.gz")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert _run(tmp_path / "a.nii.gz", tmp_path / "link") == 0
    assert (tmp_path / "link").is_symlink()
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == [
        ".twinsep", "case.json", "scan.nii.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz", "link", "real"]
    assert _run(tmp_path / "a.nii.gz", tmp_path / "link", "--overwrite") == 0
    assert (tmp_path / "link").is_symlink()


def test_read_only_out_and_parent_are_refused(tmp_path, capsys):
    vol = _oblique()
    vol.write(tmp_path / "a.nii.gz")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert _run(tmp_path / "a.nii.gz", ro) == 2
        assert "read-only" in capsys.readouterr().err
        assert ro.is_dir() and not any(ro.iterdir()) and ro.stat().st_mode & 0o777 == 0o555
        assert _run(tmp_path / "a.nii.gz", ro / "case") == 2
        assert "not a writable folder" in capsys.readouterr().err
        assert not any(ro.iterdir())
    finally:
        ro.chmod(0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz", "ro"]


# --- PHI ------------------------------------------------------------------------------
def _all_bytes(folder: Path) -> bytes:
    blobs = []
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            blobs.append(gzip.decompress(data) if p.name.endswith(".gz") else data)
    return b"".join(blobs)


@pytest.mark.parametrize("name,pid", [("PHANTOM^TWINS", "TS-0001"), ("DOE^JANE", "8675309")])
def test_no_phi_unless_keep_phi(tmp_path, name, pid):
    src = tmp_path / "scan"
    write_ct_series(_oblique(), src, patient_name=name, patient_id=pid)
    for f in src.iterdir():
        ds = pydicom.dcmread(f)
        ds.PatientBirthDate = "20230405"
        ds.save_as(f)
    assert _run(src, tmp_path / "case") == 0
    blob = _all_bytes(tmp_path / "case")
    for secret in (name, name.split("^")[0], pid, "20230405"):
        assert secret.encode() not in blob
    assert _run(src, tmp_path / "phi", "--keep-phi") == 0
    info = json.loads((tmp_path / "phi" / "case.json").read_text())
    assert info["phi"]["patient_name"] == name and info["phi"]["patient_id"] == pid
    assert info["phi"]["patient_birth_date"] == "20230405"


def test_case_json_keys_and_progress(tmp_path):
    calls = []
    vol = _oblique()
    write_ct_series(vol, tmp_path / "dcm")
    ingest(tmp_path / "dcm", tmp_path / "case",
           progress=lambda message, fraction: calls.append((message, fraction)))
    assert {"reading DICOM headers", "reading DICOM pixels"} <= {c[0] for c in calls}
    assert all(0.0 <= c[1] <= 1.0 for c in calls)  # one progress type: (message, fraction)
    info = json.loads((tmp_path / "case" / "case.json").read_text())
    assert set(info) == {"twinsep_version", "created_by", "scan", "source", "geometry",
                         "pixel_type", "value_range", "rescale", "resampling", "hashes"}
    assert info["value_range"] == [int(vol.array.min()), int(vol.array.max())]


# --- bad values -------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_voxels_are_refused(tmp_path, capsys, bad, suffix):
    """ITK's NIfTI reader makes them 0 without a word: checked before it reads."""
    a = np.full((6, 7, 8), 20.0, np.float32)
    a[2, 3, 4] = bad
    a[0, 0, 0] = -1000.0
    Volume(a, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)).write(tmp_path / f"f{suffix}")
    assert _run(tmp_path / f"f{suffix}", tmp_path / "case") == 2
    err = capsys.readouterr().err
    assert "1 of 336 voxels are not numbers" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "case").exists()


def test_thick_slices_are_warned_of(tmp_path, capsys):
    vol = Volume(np.zeros((5, 6, 7), np.int16), (0.0, 0.0, 0.0), (0.5, 0.5, 5.0))
    vol.write(tmp_path / "thick.nii.gz")
    assert _run(tmp_path / "thick.nii.gz", tmp_path / "case") == 0
    out = " ".join(capsys.readouterr().err.split())
    assert "warning: slices 5 mm thick (over 3 mm)" in out
    thin = Volume(np.zeros((5, 6, 7), np.int16), (0.0, 0.0, 0.0), (0.5, 0.5, 3.0))
    thin.write(tmp_path / "thin.nii.gz")
    assert _run(tmp_path / "thin.nii.gz", tmp_path / "case2") == 0
    assert "thick" not in capsys.readouterr().err
