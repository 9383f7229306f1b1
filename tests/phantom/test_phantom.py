"""Tests of the craniopagus phantom (small grids: 2-3 mm)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from twinsep.labels import Owner, Tissue


def _along(vol, a, b, n=200):
    """Nearest-voxel values of ``vol`` along the world segment a-b."""
    pts = np.linspace(np.asarray(a), np.asarray(b), n)
    idx = np.round(vol.world_to_index(pts)).astype(int)
    return vol.array[idx[:, 0], idx[:, 1], idx[:, 2]]


def _centroids(ph):
    return [np.asarray(ph.truth["brain_centroids_mm"][t]) for t in "AB"]


def test_codes_dtypes_and_hu(phantom_total):
    ph = phantom_total
    t, o, ct = ph.tissues.array, ph.owner.array, ph.ct.array
    assert t.dtype == np.uint8 and o.dtype == np.uint8 and ct.dtype == np.int16
    assert set(np.unique(t)) == set(range(6))
    assert set(np.unique(o)) == {0, 1, 2, 3}
    assert ph.ct.same_grid(ph.tissues) and ph.ct.same_grid(ph.owner)
    med = {c: float(np.median(ct[t == c])) for c in range(6)}
    assert med[Tissue.BACKGROUND] < -900
    assert 0 < med[Tissue.SCALP] < 100
    assert med[Tissue.BONE] > 300
    assert -20 < med[Tissue.CSF] < 80
    assert 15 < med[Tissue.BRAIN] < 50
    assert med[Tissue.VESSEL] > 150
    assert ((o == 0) == (t == 0)).all()


def test_volumes_are_infant_sized(phantom_total):
    vols = phantom_total.truth["tissue_volumes_ml"]
    for twin in "AB":
        assert 500 < vols[twin]["brain"] < 900
        assert 40 < vols[twin]["bone"] < 200
        assert vols[twin]["scalp"] > vols[twin]["bone"]


def test_no_scalp_or_bone_inside_total_junction(phantom_total):
    ph = phantom_total
    a, b = _centroids(ph)
    vals = set(_along(ph.tissues, a, b).tolist())
    assert Tissue.SCALP not in vals and Tissue.BONE not in vals
    assert Tissue.BRAIN in vals
    assert ph.truth["brain_min_distance_mm"] == 0.0
    assert ph.truth["brain_contact_area_cm2"] > 1.0
    assert ph.truth["junction_area_cm2"] > ph.truth["brain_contact_area_cm2"]


def test_partial_has_bone_plate(phantom_partial):
    ph = phantom_partial
    a, b = _centroids(ph)
    vals = _along(ph.tissues, a, b, 400)
    assert (vals == Tissue.BONE).any()
    assert not (vals == Tissue.SCALP).any()
    # dura on both sides of the plate, no brain contact
    bone = np.nonzero(vals == Tissue.BONE)[0]
    assert vals[bone.min() - 1] == Tissue.CSF and vals[bone.max() + 1] == Tissue.CSF
    assert ph.truth["brain_min_distance_mm"] > 3.0, ph.truth["brain_min_distance_mm"]
    assert ph.truth["classification"]["fusion"] == "partial"
    assert not ph.truth["shared_vessel"]["crosses"]


@pytest.mark.parametrize("fusion", ["partial", "total"])
def test_scalp_depth_is_true_depth_in_crease(fusion):
    """In the crease between the heads the smooth union is no distance field: the depth
    that lays scalp and bone must still be the true depth below the outer surface (else
    the crease scalp is 2-3 times too thick and the skulls do not meet)."""
    from scipy import ndimage as ndi

    from twinsep.phantom.build import layout, surface_depth
    from twinsep.phantom.spec import PhantomSpec

    lay = layout(PhantomSpec(fusion=fusion))
    # the crease: where the head ends along e1 on the interface, from the junction centre
    s = np.linspace(0.0, 90.0, 901)
    line = lay.junction_centre + s[:, None] * lay.e1
    apex = line[np.flatnonzero(lay.fields(line)[3] < 0).max()]
    step = 0.4
    ax = np.arange(-12.0, 12.0 + step / 2, step)
    g = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3) + apex
    sa, sb, delta, h = lay.fields(g)
    true = ndi.distance_transform_edt((h < 0).reshape((len(ax),) * 3), sampling=step).ravel()
    band = (true > 1.0) & (true < 6.0) & (np.abs(delta) < 2.0)  # the crease, scalp and bone
    assert band.sum() > 100
    err = surface_depth(lay, g, sa, sb, h)[band] - true[band]
    assert np.median(np.abs(err)) < 0.4, np.median(np.abs(err))
    # -h alone reads the crease too shallow (the test would see the old scalp)
    assert np.median(true[band] + h[band]) > 1.0


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"axial_rotation": 10.0}, ("total", "vertical", "I")),
        ({"axial_rotation": 180.0}, ("total", "vertical", "II")),
        ({"axial_rotation": 90.0}, ("total", "vertical", "III")),
        ({"long_axis_angle": 110.0, "fusion_depth": 20.0}, ("total", "angular", None)),
        ({"fusion": "partial", "axial_rotation": 90.0}, ("partial", "vertical", None)),
        ({"fusion": "total", "shared_sinus": False}, ("partial", "vertical", None)),
    ],
)
def test_classification(make_phantom_obj, options, expected):
    ph = make_phantom_obj(spacing=3.0, **options)
    c = ph.truth["classification"]
    assert (c["fusion"], c["orientation"], c["type"]) == expected
    la, lb = (np.asarray(ph.truth["long_axes"][t]) for t in "AB")
    angle = np.degrees(np.arccos(np.clip(la @ lb, -1, 1)))
    assert angle == pytest.approx(options.get("long_axis_angle", 180.0), abs=0.5)
    assert ph.truth["conjoined"] is True


def _vessel_components_spanning(ph) -> int:
    from scipy import ndimage as ndi

    lab, _ = ndi.label(ph.tissues.array == Tissue.VESSEL, np.ones((3, 3, 3)))
    o = ph.owner.array
    a = set(np.unique(lab[(o == Owner.A) & (lab > 0)]).tolist())
    b = set(np.unique(lab[(o == Owner.B) & (lab > 0)]).tolist())
    return len(a & b)


def test_shared_sinus_crosses(phantom_total):
    sv = phantom_total.truth["shared_vessel"]
    assert sv["crosses"] is True
    assert len(sv["crossings"]) >= 1
    # tube radius 2 mm: about 12.6 mm^2 per crossing, more when oblique to the interface
    for c in sv["crossings"]:
        assert 8.0 < c["cross_section_mm2"] < 40.0
    assert phantom_total.truth["shared_vessel_volume_ml"] > 0.5
    assert _vessel_components_spanning(phantom_total) >= 1


def test_no_shared_sinus_no_crossing(make_phantom_obj):
    ph = make_phantom_obj(fusion="total", shared_sinus=False)
    assert ph.truth["shared_vessel"] == {"crosses": False, "cross_section_mm2": 0.0,
                                         "crossings": []}
    assert ph.truth["shared_vessel_volume_ml"] == 0.0
    assert (ph.tissues.array == Tissue.VESSEL).any()  # the sagittal sinuses remain
    assert _vessel_components_spanning(ph) == 0


def test_separate(phantom_separate):
    tr = phantom_separate.truth
    assert tr["conjoined"] is False
    assert 5.0 < tr["closest_distance_mm"] <= 11.0
    assert tr["brain_min_distance_mm"] > 15.0
    assert tr["junction_area_cm2"] == 0.0
    assert tr["classification"]["fusion"] is None
    # two separate head components
    from scipy import ndimage as ndi

    _, n = ndi.label(phantom_separate.tissues.array > 0)
    assert n == 2


def test_owner_matches_brains(phantom_total):
    ph = phantom_total
    t, o = ph.tissues.array, ph.owner.array
    for code, cen in zip((Owner.A, Owner.B), _centroids(ph), strict=True):
        k, j, i = np.round(ph.owner.world_to_index(cen)).astype(int)
        assert o[k, j, i] == code
    # brain voxels are owned by A or B except in the thin ambiguous band
    brain_owner = np.bincount(o[t == Tissue.BRAIN], minlength=4)
    assert brain_owner[0] == 0
    assert brain_owner[3] < 0.1 * brain_owner.sum()
    vox = ph.tissues.voxel_volume_ml
    vols = ph.truth["tissue_volumes_ml"]
    assert brain_owner[1] * vox == pytest.approx(vols["A"]["brain"], rel=0.1)
    assert brain_owner[2] * vox == pytest.approx(vols["B"]["brain"], rel=0.1)
    # twin A below (z), twin B above
    assert _centroids(ph)[1][2] > _centroids(ph)[0][2] + 60


def test_oblique_anisotropic_same_truth(make_phantom_obj):
    ref = make_phantom_obj(spacing=(2.0, 2.0, 2.0))
    obl = make_phantom_obj(spacing=(1.8, 2.0, 2.6), oblique=25.0)
    d = obl.tissues.direction_matrix
    assert not np.allclose(d, np.eye(3))
    assert np.allclose(d @ d.T, np.eye(3))
    assert obl.tissues.spacing == (1.8, 2.0, 2.6)
    for twin in "AB":
        r, q = ref.truth["tissue_volumes_ml"][twin], obl.truth["tissue_volumes_ml"][twin]
        assert q["brain"] == pytest.approx(r["brain"], rel=0.03)
        assert q["dura"] == pytest.approx(r["dura"], rel=0.06)
        assert q["scalp"] + q["bone"] == pytest.approx(r["scalp"] + r["bone"], rel=0.05)
        ca = np.asarray(ref.truth["brain_centroids_mm"][twin])
        cb = np.asarray(obl.truth["brain_centroids_mm"][twin])
        assert np.linalg.norm(ca - cb) < 1.5
    assert obl.truth["junction_area_cm2"] == pytest.approx(ref.truth["junction_area_cm2"])
    assert obl.truth["classification"] == ref.truth["classification"]


def test_seed_determinism():
    from twinsep.phantom import PhantomSpec, make_phantom

    spec = PhantomSpec(spacing=(3.0, 3.0, 3.0), seed=5)
    p1, p2 = make_phantom(spec), make_phantom(spec)
    p3 = make_phantom(spec.model_copy(update={"seed": 6}))
    for name in ("ct", "tissues", "owner"):
        assert np.array_equal(getattr(p1, name).array, getattr(p2, name).array)
    assert p1.truth == p2.truth
    assert not np.array_equal(p1.ct.array, p3.ct.array)
    assert not np.array_equal(p1.tissues.array, p3.tissues.array)


def test_write_and_truth_json(phantom_total_case, tmp_path, phantom_total):
    from twinsep.casefolder import dumps
    from twinsep.image import Volume
    from twinsep.phantom import write_phantom

    names = sorted(p.name for p in phantom_total_case.iterdir())
    assert names == [".twinsep", "ct.nii.gz", "owner.nii.gz", "tissues.nii.gz", "truth.json"]
    ct = Volume.read(phantom_total_case / "ct.nii.gz")
    assert ct.array.dtype == np.int16 and ct.same_grid(phantom_total.ct)
    assert np.array_equal(ct.array, phantom_total.ct.array)
    text = (phantom_total_case / "truth.json").read_text()
    assert text == dumps(phantom_total.truth)
    truth = json.loads(text)
    assert set(truth) == {
        "spec", "conjoined", "classification", "tissue_volumes_ml", "shared_vessel",
        "shared_vessel_volume_ml", "brain_min_distance_mm", "brain_contact_area_cm2",
        "junction_area_cm2", "junction_skull_area_cm2", "brain_centroids_mm", "long_axes",
        "anterior",
        "closest_distance_mm", "geometry"}
    assert truth["geometry"] == phantom_total.tissues.geometry()
    assert truth["spec"]["shared_sinus"] is True and truth["spec"]["fusion_depth"] == 26.0
    # a second write to a non-empty folder is refused and leaves it intact
    from twinsep.errors import InputError

    with pytest.raises(InputError):
        write_phantom(phantom_total, phantom_total_case)
    assert (phantom_total_case / "truth.json").read_text() == text


def test_cli(tmp_path):
    from twinsep.cli import main

    out = tmp_path / "ph"
    rc = main(["phantom", "--out", str(out), "--spacing", "3,3,3.5", "--axial-rotation", "180",
               "--seed", "2", "--noise", "5"])
    assert rc == 0
    truth = json.loads((out / "truth.json").read_text())
    assert truth["classification"]["type"] == "II"
    assert truth["spec"]["spacing"] == [3.0, 3.0, 3.5]
    assert truth["geometry"]["spacing_mm"] == [3.0, 3.0, 3.5]
    assert main(["phantom", "--out", str(tmp_path / "x"), "--fusion", "sideways"]) == 2
    assert main(["phantom", "--out", str(tmp_path / "y"), "--spacing", "1,2"]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_dicom_series(make_phantom_obj, tmp_path):
    import pydicom

    from twinsep.phantom import write_phantom

    ph = make_phantom_obj(spacing=3.0)
    write_phantom(ph, tmp_path / "case", dicom=True)
    files = sorted((tmp_path / "case" / "dicom").iterdir())
    assert len(files) == ph.ct.shape[0]
    ds = pydicom.dcmread(files[0])
    assert str(ds.PatientName) == "PHANTOM^TWINS"
