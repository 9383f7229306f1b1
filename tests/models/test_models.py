"""``twinsep models``: meshes, GLB (Khronos validator), STL, 3MF doll, .seg.nrrd, DICOM-SEG."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from twinsep.image import Volume

ROOT = Path(__file__).resolve().parents[2]


def _owner_without_ambiguous(owner: Volume) -> Volume:
    """Phantom owner map with code 3 (ambiguous) given to the nearest twin."""
    from scipy import ndimage as ndi

    a = np.asarray(owner.array).copy()
    amb = a == 3
    if amb.any():
        idx = ndi.distance_transform_edt((a == 0) | amb, return_distances=False,
                                         return_indices=True)
        a[amb] = a[tuple(i[amb] for i in idx)]
    return owner.with_array(a.astype(np.uint8))


def _cut_patch(tissues: Volume, owner: Volume) -> tuple[np.ndarray, np.ndarray]:
    """A small square sheet (world mm) at the A/B interface, as a stand-in cut surface."""
    own = np.asarray(owner.array)
    a = tissues.index_to_world(np.argwhere(own == 1).mean(axis=0))
    b = tissues.index_to_world(np.argwhere(own == 2).mean(axis=0))
    c, n = (a + b) / 2, (b - a) / np.linalg.norm(b - a)
    u = np.cross(n, [1.0, 0, 0] if abs(n[0]) < 0.9 else [0, 1.0, 0])
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    g = np.linspace(-30, 30, 7)
    pts = np.array([c + x * u + y * v for x in g for y in g])
    faces = []
    for i in range(6):
        for j in range(6):
            p = i * 7 + j
            faces += [[p, p + 7, p + 1], [p + 1, p + 7, p + 8]]
    return pts, np.array(faces)


@pytest.fixture(scope="module")
def models_case(phantom_total_case, tmp_path_factory):
    """A DICOM-ingested 2 mm total phantom with tissues, owners and a cut surface, after
    ``twinsep models --dicom``."""
    from twinsep.cli import main
    from twinsep.exchange.dicom import write_ct_series
    from twinsep.ingest.read import ingest
    from twinsep.separate.mesh import write_ply

    tmp = tmp_path_factory.mktemp("models")
    ct = Volume.read(phantom_total_case / "ct.nii.gz")
    write_ct_series(ct, tmp / "dicom", patient_name="PHANTOM^TWINS", patient_id="PHANTOM")
    case = tmp / "case"
    ingest(tmp / "dicom", case)
    (case / "labels").mkdir(exist_ok=True)
    shutil.copy(phantom_total_case / "tissues.nii.gz", case / "labels" / "tissues.nii.gz")
    tissues = Volume.read(case / "labels" / "tissues.nii.gz")
    owner = _owner_without_ambiguous(Volume.read(phantom_total_case / "owner.nii.gz"))
    owner.write(case / "labels" / "twins.nii.gz")
    (case / "models").mkdir()
    write_ply(case / "models" / "cut_surface.ply", *_cut_patch(tissues, owner))
    rc = main(["models", str(case), "--dicom", str(tmp / "dicom"), "--scale", "0.8",
               "--min-wall-mm", "2"])
    assert rc == 0
    return case


def _manifest(case: Path) -> dict:
    return json.loads((case / "models" / "manifest.json").read_text())


# --- meshes ------------------------------------------------------------------------------
def test_mask_surface_world_coordinates_oblique_anisotropic():
    """An ellipsoid on an oblique, anisotropic grid: the mesh lies where the voxels are,
    is closed, and smoothing keeps its volume."""
    from twinsep.models.surfaces import SurfaceSettings, mask_surface

    k, j, i = np.mgrid[:40, :36, :30]
    mask = ((i - 15) / 10.0) ** 2 + ((j - 18) / 12.0) ** 2 + ((k - 20) / 14.0) ** 2 < 1
    th = np.deg2rad(25)
    d = np.array([[np.cos(th), 0, np.sin(th)], [0, -1, 0], [np.sin(th), 0, -np.cos(th)]])
    vol = Volume(mask.astype(np.uint8), (5.0, -20.0, 40.0), (1.2, 0.9, 1.5), d.ravel())
    s = mask_surface(mask, vol, SurfaceSettings(mc_spacing_mm=0.5, max_faces_layer=4000))
    assert s is not None and s.watertight
    assert len(s.mesh.faces) <= 4000
    assert abs(s.volume_ml - s.voxel_volume_ml) / s.voxel_volume_ml < 0.03
    assert abs(s.smoothing_volume_change_pct) < 1.0
    centre = vol.index_to_world(np.argwhere(mask).mean(axis=0))
    assert np.linalg.norm(s.mesh.center_mass - centre) < 0.5


def test_manifest_and_plan(models_case):
    from twinsep.casefolder import read_json

    m = _manifest(models_case)
    assert m["format"] == "twinsep-models" and m["glb"] == "model.glb"
    names = [ly["name"] for ly in m["layers"]]
    for twin in "AB":
        for tissue in ("scalp", "bone", "dura", "brain"):
            assert f"{twin}/{tissue}" in names
    assert any(n.startswith("shared/vessel-") for n in names)
    assert "cut-surface" in names
    keys = {"name", "twin", "tissue", "colour_rgb", "opacity", "node", "stl", "triangles",
            "watertight", "volume_ml", "area_cm2"}
    for ly in m["layers"]:
        assert keys <= set(ly)
    by = {ly["name"]: ly for ly in m["layers"]}
    assert by["A/brain"]["colour_rgb"] == [128, 0, 160]
    assert by["B/brain"]["colour_rgb"] == [255, 140, 0]
    assert by["shared/vessel-1"]["colour_rgb"] == [220, 20, 30]
    assert by["shared/vessel-1"]["vessel_id"] == 1
    assert by["cut-surface"]["opacity"] < 1 and by["cut-surface"]["stl"] is None
    assert sum(ly["triangles"] for ly in m["layers"]) <= 1_200_000
    plan = read_json(models_case / "plan.json")["models"]
    assert plan["glb"] == "models/model.glb" and plan["dicom_seg"] == "models/segmentation.dcm"
    assert plan["doll_print"]["watertight"] and plan["doll_print"]["scale"] == 0.8
    for ly in plan["layers"]:
        if ly["name"] != "cut-surface":
            assert ly["watertight"]
            assert abs(ly["smoothing_volume_change_pct"]) < 5.0
    # brain volume close to the voxel count
    tissues = Volume.read(models_case / "labels" / "tissues.nii.gz")
    owner = Volume.read(models_case / "labels" / "twins.nii.gz")
    vox = np.count_nonzero((tissues.array == 4) & (owner.array == 1)) * tissues.voxel_volume_ml
    assert abs(by["A/brain"]["volume_ml"] - vox) / vox < 0.05


def test_every_stl_is_watertight(models_case):
    import trimesh

    stls = sorted((models_case / "models" / "stl").glob("*.stl"))
    assert len(stls) >= 11
    for p in stls:
        mesh = trimesh.load(p, file_type="stl", force="mesh")
        assert mesh.is_watertight, p.name
        assert mesh.volume > 0, p.name


def test_glb_nodes_and_materials(models_case):
    from twinsep.exchange.gltf import read_glb_json

    g = read_glb_json(models_case / "models" / "model.glb")
    names = {n["name"] for n in g["nodes"]}
    assert {"A/brain", "B/scalp", "shared/vessel-1", "cut-surface", "A", "B"} <= names
    mats = {m["name"]: m for m in g["materials"]}
    assert mats["cut-surface"]["alphaMode"] == "BLEND"
    pbr = mats["A/brain"]["pbrMetallicRoughness"]
    assert {"baseColorFactor", "metallicFactor", "roughnessFactor"} <= set(pbr)


def test_glb_passes_khronos_validator(models_case, validate_glb):
    report = validate_glb(models_case / "models" / "model.glb")
    assert report["numErrors"] == 0, report["messages"]


def test_3mf_doll_has_both_colours(models_case):
    import trimesh

    from twinsep.exchange.mesh_files import read_3mf_colours

    path = models_case / "models" / "doll.3mf"
    colours = read_3mf_colours(path)
    assert colours == {"twin A": (128, 0, 160), "twin B": (255, 140, 0)}
    pytest.importorskip("lxml", reason="trimesh reads 3MF with lxml")
    scene = trimesh.load(path, file_type="3mf")
    geoms = list(scene.geometry.values())
    assert len(geoms) == 2
    assert all(g.is_watertight for g in geoms)
    # scaled 0.8 about the heads' centre: the doll is centred near the origin
    assert np.linalg.norm(scene.bounds.mean(axis=0)) < 20


def test_seg_nrrd_reads_back(models_case):
    import SimpleITK as sitk

    from twinsep.exchange.segmentation import read_seg_nrrd
    from twinsep.models.scene import layer_labelmap

    path = models_case / "models" / "segmentation.seg.nrrd"
    vol, segments, header = read_seg_nrrd(path)
    assert header["Segmentation_MasterRepresentation"] == "Binary labelmap"
    assert header["space"] == "left-posterior-superior"
    names = {s["Name"] for s in segments}
    assert {"A brain", "B scalp", "A bone", "B dura", "shared vessel-1"} <= names
    tissues = Volume.read(models_case / "labels" / "tissues.nii.gz")
    owner = Volume.read(models_case / "labels" / "twins.nii.gz")
    expected, _ = layer_labelmap(tissues, owner)
    assert vol.same_grid(tissues)
    np.testing.assert_array_equal(vol.array, expected.array)
    for s in segments:
        lab = int(s["LabelValue"])
        assert (vol.array == lab).any()
        assert s["Layer"] == "0"
    a_brain = next(s for s in segments if s["Name"] == "A brain")
    assert (vol.array == int(a_brain["LabelValue"]))[(tissues.array == 4)
                                                      & (owner.array == 1)].all()
    # ITK reads it too, on the same grid
    img = Volume.from_sitk(sitk.ReadImage(str(path)))
    assert img.same_grid(tissues)
    np.testing.assert_array_equal(img.array, expected.array)


def test_dicom_seg_reads_back(models_case):
    import highdicom as hd
    import pydicom

    path = models_case / "models" / "segmentation.dcm"
    seg = hd.seg.segread(path)
    labels = [d.segment_label for d in seg.SegmentSequence]
    assert "A brain" in labels and "B scalp" in labels
    src = pydicom.dcmread(next((models_case.parent / "dicom").glob("*.dcm")),
                          stop_before_pixels=True)
    assert seg.PatientID == src.PatientID
    refs = seg.get_source_image_uids()
    assert {r[1] for r in refs} == {src.SeriesInstanceUID}
    brain = next(d for d in seg.SegmentSequence if d.segment_label == "A brain")
    assert brain.segmented_property_type.value == "12738006"


def test_missing_labels_is_bad_input(tmp_path):
    from twinsep.cli import main

    (tmp_path / "case").mkdir()
    assert main(["models", str(tmp_path / "case")]) == 2


# --- fast paths against their plain definitions ------------------------------------------
def _box_mesh(lo=(0.0, 0.0, 0.0), size=1.0) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    m = trimesh.creation.box(extents=(size,) * 3)
    return np.asarray(m.vertices) + size / 2 + np.asarray(lo), np.asarray(m.faces, np.int64)


def _merge(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u, inv = np.unique(v, axis=0, return_inverse=True)
    return u, inv.reshape(-1)[f]


def test_mesh_measures_and_closedness():
    from twinsep.mesh import is_closed, signed_volume, surface_area

    v, f = _box_mesh(size=2.0)
    assert is_closed(v, f)
    assert np.isclose(signed_volume(v, f), 8.0) and np.isclose(surface_area(v, f), 24.0)
    assert np.isclose(signed_volume(v, f[:, ::-1]), -8.0)
    assert not is_closed(v, f[1:])  # a hole
    flipped = f.copy()
    flipped[0] = flipped[0][::-1]
    assert not is_closed(v, flipped)  # inconsistent winding
    # a second vertex at the same place is one vertex to an STL reader
    v2 = np.vstack([v, v[:1]])
    f2 = f.copy()
    first = np.flatnonzero((f2 == 0).any(axis=1))[0]
    f2[first][f2[first] == 0] = len(v)
    assert is_closed(v2, f2)


def test_decimation_defects_are_closed_again():
    """A pillow glued onto an edge is dropped; two solids pinched along an edge are split
    there and moved apart."""
    from twinsep.mesh import UNPINCH_MM, drop_pillows, is_closed, unpinch

    v, f = _box_mesh()
    a, b = f[0][:2]
    vp = np.vstack([v, [[5.0, 5.0, 5.0]]])
    fp = np.vstack([f, [[a, b, 8], [b, a, 8]]])
    assert not is_closed(vp, fp)
    vq, fq = drop_pillows(vp, fp)
    assert is_closed(vq, fq) and len(fq) == len(f) and len(vq) == len(v)

    v1, f1 = _box_mesh()
    v2, f2 = _box_mesh(lo=(1.0, 1.0, 0.0))
    v, f = _merge(np.vstack([v1, v2]), np.vstack([f1, f2 + len(v1)]))
    assert len(v) == 14 and not is_closed(v, f)
    nv, nf, ok = unpinch(v, f)
    assert ok and len(nv) == 16 and len(nf) == len(f)
    moved = np.linalg.norm(nv[:, None] - v[None], axis=2).min(axis=1)
    assert np.isclose(moved.max(), UNPINCH_MM) and np.count_nonzero(moved > 0) == 4


def test_taubin_matches_trimesh():
    import trimesh

    from twinsep.mesh import taubin

    m = trimesh.creation.icosphere(subdivisions=3)
    m.vertices += np.random.default_rng(0).normal(0, 0.02, m.vertices.shape)
    ours = taubin(m.vertices, m.faces, 0.5, 0.53, 10)
    trimesh.smoothing.filter_taubin(m, lamb=0.5, nu=0.53, iterations=10)
    np.testing.assert_allclose(ours, m.vertices, atol=1e-12)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.8, 0.8, 0.8), (1.5, 0.7, 0.7)])
def test_thin_mask_morphology_matches_edt(spacing, monkeypatch):
    from scipy import ndimage as ndi

    from twinsep.models import doll

    rng = np.random.default_rng(1)
    solid = ndi.gaussian_filter(rng.random((40, 44, 36)), 2.0) > 0.5
    solid[5:30, 10, 5:30] = True  # a one-voxel plate
    fast = doll.thin_mask(solid, spacing, 2.0)
    monkeypatch.setattr(doll, "MAX_BALL_VOXELS", 0)
    slow = doll.thin_mask(solid, spacing, 2.0)
    assert fast.any()
    np.testing.assert_array_equal(fast, slow)


def test_coarse_field_blocks_align_to_the_grid():
    from twinsep.mesh import occupancy_field

    full = np.zeros((12, 12, 12), bool)
    full[3:9, 2:7, 5:11] = True
    crop = full[3:9, 2:7, 5:11]
    a, off_a, step = occupancy_field(full, (0, 0, 0), (2, 2, 2))
    b, off_b, _ = occupancy_field(crop, (3, 2, 5), (2, 2, 2))
    # the same blocks: the crop's field is a window of the full one
    d = ((off_b - off_a) / step).astype(int)
    np.testing.assert_array_equal(b[1:-1, 1:-1, 1:-1],
                                  a[1 + d[0]:1 + d[0] + b.shape[0] - 2,
                                    1 + d[1]:1 + d[1] + b.shape[1] - 2,
                                    1 + d[2]:1 + d[2] + b.shape[2] - 2])
    assert np.isclose(a.sum() * 8, full.sum())


def test_layer_labelmap_matches_the_rules(phantom_total_case):
    """Label values per (twin, tissue) and the shared vessels as identify.shared finds them."""
    from twinsep.identify.shared import shared_vessels
    from twinsep.labels import Owner
    from twinsep.models.scene import LAYER_TISSUES, layer_labelmap, resolved_owner

    tissues = Volume.read(phantom_total_case / "tissues.nii.gz")
    owner = _owner_without_ambiguous(Volume.read(phantom_total_case / "owner.nii.gz"))
    lab, layers = layer_labelmap(tissues, owner)
    own = resolved_owner(tissues, owner)
    t = np.asarray(tissues.array)
    expected = np.zeros(t.shape, np.uint8)
    value = 1
    for code in (Owner.A, Owner.B):
        for tissue in LAYER_TISSUES:
            expected[(own == code) & (t == tissue)] = value
            value += 1
    vessels, mask = shared_vessels(tissues, own)
    assert vessels and np.array_equal(lab.array >= value, mask)
    expected[mask] = lab.array[mask]
    np.testing.assert_array_equal(lab.array, expected)
    for v in vessels:
        ly = next(ly for ly in layers if ly.vessel_id == v.id)
        vol = np.count_nonzero(lab.array == ly.label) * tissues.voxel_volume_ml
        assert abs(vol - v.volume_ml) < 1e-3
