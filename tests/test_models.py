"""``twinsep models``: meshes, GLB (Khronos validator), STL, 3MF doll, .seg.nrrd, DICOM-SEG."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from twinsep.image import Volume

ROOT = Path(__file__).resolve().parents[1]


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
    from twinsep.ingest import ingest
    from twinsep.separation.mesh import write_ply

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


def test_gltf_frame_is_a_proper_rotation():
    from twinsep.exchange.gltf import LPS_MM_TO_GLTF, to_gltf_frame

    r = LPS_MM_TO_GLTF[:3, :3] * 1000.0
    assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1.0)
    # superior is +Y (up), anterior (-y LPS) is +Z, patient left is +X; metres
    assert np.allclose(to_gltf_frame([[0, 0, 1000.0]]), [[0, 1, 0]])
    assert np.allclose(to_gltf_frame([[0, -1000.0, 0]]), [[0, 0, 1]])
    assert np.allclose(to_gltf_frame([[1000.0, 0, 0]]), [[1, 0, 0]])


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


def _node_validator() -> list[str] | None:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "gltf-validator").is_dir():
        return None
    return [node, str(ROOT / "tests" / "validate_gltf.mjs")]


def test_glb_passes_khronos_validator(models_case):
    cmd = _node_validator()
    if cmd is None:
        pytest.skip("node or node_modules/gltf-validator missing (npm install)")
    out = subprocess.run([*cmd, str(models_case / "models" / "model.glb")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(out.stdout)
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
