"""Mesh and label file formats: the glTF frame and vertex normals, Slicer .seg.nrrd extents."""

from __future__ import annotations

import numpy as np

from twinsep.image import Volume


def _box_mesh(size=1.0) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    m = trimesh.creation.box(extents=(size,) * 3)
    return np.asarray(m.vertices) + size / 2, np.asarray(m.faces, np.int64)


def test_gltf_frame_is_a_proper_rotation():
    from twinsep.exchange.gltf import LPS_MM_TO_GLTF, to_gltf_frame

    r = LPS_MM_TO_GLTF[:3, :3] * 1000.0
    assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1.0)
    # superior is +Y (up), anterior (-y LPS) is +Z, patient left is +X; metres
    assert np.allclose(to_gltf_frame([[0, 0, 1000.0]]), [[0, 1, 0]])
    assert np.allclose(to_gltf_frame([[0, -1000.0, 0]]), [[0, 0, 1]])
    assert np.allclose(to_gltf_frame([[1000.0, 0, 0]]), [[1, 0, 0]])


def test_glb_vertex_normals_are_area_weighted():
    from twinsep.exchange.gltf import vertex_normals

    v, f = _box_mesh()
    tri = v[f]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    ref = np.zeros_like(v)
    for c in range(3):
        np.add.at(ref, f[:, c], fn)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(vertex_normals(v, f), ref, atol=1e-6)


def test_seg_nrrd_segment_extents(tmp_path):
    """Each segment's ``Extent`` (Slicer: ``i0 i1 j0 j1 k0 k1``, inclusive) is the box of its
    voxels; a segment without voxels (label 2 inside the map's range, 9 beyond it) has the
    empty extent."""
    from twinsep.exchange.segmentation import Segment, read_seg_nrrd, write_seg_nrrd

    lab = np.zeros((9, 8, 7), np.uint8)  # k, j, i
    lab[2:5, 1:3, 4:7] = 1
    lab[7, 6, 0] = 3
    segments = [Segment(v, f"s{v}", (255, 0, 0), "brain") for v in (1, 2, 3, 9)]
    path = tmp_path / "s.seg.nrrd"
    write_seg_nrrd(path, Volume(lab), segments)
    vol, read, _ = read_seg_nrrd(path)
    np.testing.assert_array_equal(vol.array, lab)
    extents = {int(s["LabelValue"]): s["Extent"] for s in read}
    assert extents == {1: "4 6 1 2 2 4", 2: "0 -1 0 -1 0 -1", 3: "0 0 6 6 7 7",
                       9: "0 -1 0 -1 0 -1"}
