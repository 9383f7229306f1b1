"""The DICOM CT writers and the stack-geometry helpers of twinsep.exchange.dicom."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import CTImageStorage, EnhancedCTImageStorage, ExplicitVRLittleEndian
from scipy.spatial.transform import Rotation

from twinsep.exchange.dicom import (
    header_of,
    read_header,
    resample_stack,
    scan_files,
    stack_geometry,
    write_ct_series,
    write_enhanced_ct,
)
from twinsep.image import Volume


def _oblique(shape=(6, 5, 4), seed=0) -> Volume:
    rng = np.random.default_rng(seed)
    a = rng.integers(-1024, 3000, size=shape).astype(np.int16)
    rot = Rotation.from_rotvec(0.5 * np.array([1.0, 2.0, 3.0]) / np.sqrt(14)).as_matrix()
    return Volume(a, (10.0, -20.0, 30.0), (0.7, 0.9, 1.6), rot.ravel())


def test_series_tags_and_pixels(tmp_path):
    vol = _oblique()
    files = write_ct_series(vol, tmp_path / "s", patient_name="DOE^JANE", patient_id="42",
                            study_date="20240102")
    assert [f.name for f in files] == [f"IM{k:05d}.dcm" for k in range(1, 7)]
    d = vol.direction_matrix
    uids = set()
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.SOPClassUID == CTImageStorage == ds.file_meta.MediaStorageSOPClassUID
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        uids.add(ds.SOPInstanceUID)
        assert ds.Modality == "CT" and str(ds.PatientName) == "DOE^JANE"
        np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient],
                                   vol.index_to_world(np.array([k, 0, 0])), atol=1e-9)
        np.testing.assert_allclose([float(v) for v in ds.ImageOrientationPatient],
                                   [*d[:, 0], *d[:, 1]], atol=1e-12)
        assert [float(v) for v in ds.PixelSpacing] == [0.9, 0.7]  # rows, then columns
        assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == 1.6
        assert (ds.Rows, ds.Columns) == (5, 4)
        assert ds.PixelRepresentation == 0  # -1024.. fits unsigned with intercept -1024
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(hu, vol.array[k])
    assert len(uids) == 6


def test_signed_storage_and_slope(tmp_path):
    vol = Volume(np.array([-3000, 0, 500, 1000] * 6, dtype=np.int16).reshape(2, 3, 4))
    f = write_ct_series(vol, tmp_path, rescale_intercept=0.0, rescale_slope=2.0)[0]
    ds = pydicom.dcmread(f)
    assert ds.PixelRepresentation == 1
    np.testing.assert_array_equal(ds.pixel_array * 2.0, vol.array[0])
    with pytest.raises(ValueError):
        write_ct_series(Volume(np.full((2, 2, 2), 70000.0)), tmp_path / "x",
                        rescale_intercept=0.0)


def test_deterministic_and_series_uid(tmp_path):
    vol = _oblique()
    a = write_ct_series(vol, tmp_path / "a")
    b = write_ct_series(vol, tmp_path / "b")
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))
    c = write_ct_series(vol, tmp_path / "c", series_uid="1.2.3.4")
    assert pydicom.dcmread(c[0]).SeriesInstanceUID == "1.2.3.4"
    other = write_ct_series(vol.with_array(vol.array + 1), tmp_path / "d")
    assert (pydicom.dcmread(other[0]).SeriesInstanceUID
            != pydicom.dcmread(a[0]).SeriesInstanceUID)


def test_enhanced_ct_reads_in_gdcm_with_per_frame_positions(tmp_path):
    vol = _oblique()
    order = [5, 3, 1, 0, 2, 4]
    path = write_enhanced_ct(vol, tmp_path / "e.dcm", frame_order=order)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == EnhancedCTImageStorage and int(ds.NumberOfFrames) == 6
    h = header_of(path, read_header(path))
    assert h.frames == 6
    np.testing.assert_allclose(h.positions, vol.index_to_world(
        np.array([[k, 0, 0] for k in order], dtype=float)), atol=1e-9)
    np.testing.assert_allclose(h.pixel_spacing, [0.9, 0.7])
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))  # rescale applied by GDCM
    np.testing.assert_array_equal(arr, vol.array[order])


def test_scan_files_groups_by_series_and_skips_others(tmp_path):
    write_ct_series(_oblique(), tmp_path / "a")
    write_ct_series(_oblique(seed=1), tmp_path / "b")
    (tmp_path / "notes.txt").write_text("hello")
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    series, skipped = scan_files(files)
    assert len(series) == 2 and skipped == 1
    assert all(s.n_images == 6 for s in series.values())


def test_stack_geometry_regular_uneven_tilted_duplicate():
    iop = np.array([1.0, 0, 0, 0, 1, 0])
    ps = np.array([0.9, 0.7])
    pos = np.array([[0, 0, 2.0 * k] for k in (3, 0, 2, 1)])
    g = stack_geometry(pos, iop, ps)
    assert g.regular and list(g.order) == [1, 3, 2, 0]
    np.testing.assert_allclose(g.spacing, [0.7, 0.9, 2.0])
    g = stack_geometry(np.delete(pos, 2, axis=0), iop, ps)
    assert g.uneven and not g.regular and not g.tilted
    # within 1 % of the step: still regular
    jitter = np.zeros_like(pos)
    jitter[0, 2] = 0.01
    assert stack_geometry(pos + jitter, iop, ps).regular
    jitter[0, 2] = 0.1
    assert stack_geometry(pos + jitter, iop, ps).uneven
    tilted = np.array([[0, 0.5 * k, 2.0 * k] for k in range(4)])
    g = stack_geometry(tilted, iop, ps)
    assert g.tilted and not g.uneven
    assert g.tilt_deg == pytest.approx(np.degrees(np.arctan(0.25)))
    with pytest.raises(ValueError, match="same position"):
        stack_geometry(np.array([[0, 0, 0], [0, 0, 0.0], [0, 0, 1]]), iop, ps)


def test_resample_tilted_stack_is_exact_for_a_linear_field():
    """Sample a linear function of world position on tilted slices; resampling must
    give the function at the regular grid's voxel positions (inside the data)."""
    iop = np.array([1.0, 0, 0, 0, 1, 0])
    ps = np.array([1.0, 0.5])  # rows 1.0 mm apart, columns 0.5 mm
    n, rows, cols = 5, 8, 6

    def f(x):
        return 3.0 * x[..., 0] - 2.0 * x[..., 1] + 0.5 * x[..., 2] + 100

    pos = np.array([[0.0, 0.35 * k, 2.0 * k] for k in range(n)])
    stack = np.empty((n, rows, cols))
    for k in range(n):
        jj, ii = np.mgrid[0:rows, 0:cols]
        world = pos[k] + np.stack([ii * 0.5, jj * 1.0, 0 * ii], axis=-1)
        stack[k] = f(world)
    g = stack_geometry(pos, iop, ps)
    out, origin, size = resample_stack(stack, g, fill=-1000)
    assert tuple(size) == (cols, rows + 2, n)
    vol = Volume(out, origin, g.spacing, g.direction.ravel())
    kji = np.argwhere(out > -1000)
    expected = f(vol.index_to_world(kji))
    inside = out[tuple(kji.T)]
    assert len(kji) >= n * (rows - 1) * cols
    np.testing.assert_allclose(inside, expected, atol=1e-9)


def test_resample_tilted_uneven_samples_each_slice_at_its_own_position():
    """Midway between two slices shifted 2 rows apart, each is sampled at its own
    position (whole rows here) and the two averaged: a random pattern, not a linear
    field, so sampling both at an interpolated shift (1 row) would be wrong."""
    iop = np.array([1.0, 0, 0, 0, 1, 0])
    ps = np.array([1.0, 1.0])
    rng = np.random.default_rng(4)
    stack = rng.integers(-1000, 2000, size=(3, 10, 4)).astype(float)
    pos = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 2.0], [0.0, 3.0, 6.0]])  # steps 2, 4 mm
    g = stack_geometry(pos, iop, ps)
    assert g.tilted and g.uneven
    out, origin, size = resample_stack(stack, g, fill=-5000)
    np.testing.assert_allclose(g.spacing, [1.0, 1.0, 3.0])
    assert tuple(size) == (4, 13, 3) and np.allclose(origin, pos[0])
    # grid slice 1 lies 3 mm along: a quarter of the way from slice 1 (2 mm) to slice 2
    j = np.arange(3, 11)  # grid rows inside both: row j is row j-1 of slice 1, j-3 of 2
    expected = 0.75 * stack[1, j - 1] + 0.25 * stack[2, j - 3]
    np.testing.assert_allclose(out[1, j], expected, atol=1e-9)
    np.testing.assert_allclose(out[2, 3:13], stack[2], atol=1e-9)  # on slice 2: exact


def test_scan_files_notes_malformed_and_copies(tmp_path):
    files = write_ct_series(_oblique(), tmp_path / "a")
    (tmp_path / "a" / "copy.dcm").write_bytes(files[1].read_bytes())
    ds = pydicom.dcmread(files[2])
    ds.NumberOfFrames = 12
    ds.SOPInstanceUID = "1.2.3.9"
    ds.save_as(tmp_path / "a" / "bad.dcm")
    raw = (tmp_path / "a" / "bad.dcm").read_bytes()
    at = raw.find(b"\x28\x00\x08\x00IS\x02\x0012")  # (0028,0008) IS "12"
    assert at > 0
    (tmp_path / "a" / "bad.dcm").write_bytes(raw[:at + 8] + b"1A" + raw[at + 10:])
    notes: list[str] = []
    paths = sorted(p for p in tmp_path.rglob("*.dcm"))
    series, skipped = scan_files(paths, notes=notes, root=tmp_path)
    assert skipped == 2 and next(iter(series.values())).n_images == 6
    assert sorted(notes) == [
        "dropped a/copy.dcm: a copy of a/IM00002.dcm (same SOPInstanceUID and bytes)",
        "skipped a/bad.dcm: NumberOfFrames '1A' is not a number",
    ]


def test_a_4d_series_is_named_as_such() -> None:
    """Several volumes at the same slice positions (a real Canon MR of dcm_qa_canon: 13 at
    each of 40) are named a 4-D series, not 'slices at the same position'."""
    from twinsep.exchange.dicom import stack_geometry

    z = np.repeat(np.arange(5) * 2.0, 3)
    positions = np.stack([np.zeros_like(z), np.zeros_like(z), z], 1)
    orientation = np.array([1.0, 0, 0, 0, 1, 0])
    with pytest.raises(ValueError, match=r"3 images at each of its 5 slice positions.*4-D"):
        stack_geometry(positions, orientation, np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="two or more slices at the same position"):
        stack_geometry(positions[:4], orientation, np.array([1.0, 1.0]))
