"""The one copy of each core helper: boxes and blocks (twinsep.image), owner resolution
(twinsep.labels), meshes (twinsep.mesh) and the STL writer (twinsep.exchange.mesh_files)."""

from __future__ import annotations

import numpy as np
import pytest

from twinsep.image import Volume, block_expand, block_parts, block_reduce, bounding_box, crop


def _reshaped(a: np.ndarray, f: tuple[int, int, int], fill=0) -> np.ndarray:
    """Reference: ``a`` padded to whole blocks and reshaped to (nk, fk, nj, fj, ni, fi)."""
    pad = [(0, (-n) % b) for n, b in zip(a.shape, f, strict=True)]
    a = np.pad(a, pad, constant_values=fill)
    nk, nj, ni = (n // b for n, b in zip(a.shape, f, strict=True))
    return a.reshape(nk, f[0], nj, f[1], ni, f[2])


@pytest.mark.parametrize("f", [(1, 1, 1), (2, 2, 2), (3, 1, 2), (2, 3, 4)])
def test_block_reduce_matches_a_reshape(f):
    rng = np.random.default_rng(1)
    mask = rng.random((7, 9, 10)) < 0.3
    hu = rng.integers(-1000, 2000, size=(7, 9, 10)).astype(np.float32)
    r = _reshaped(mask, f)
    np.testing.assert_array_equal(block_reduce(mask, f, "any"), r.any(axis=(1, 3, 5)))
    count = block_reduce(mask, f, "count")
    assert count.dtype == np.int32
    np.testing.assert_array_equal(count, r.sum(axis=(1, 3, 5)))
    np.testing.assert_array_equal(block_reduce(hu, f, "max", fill=-np.inf),
                                  _reshaped(hu, f, -np.inf).max(axis=(1, 3, 5)))
    # integer HU: float32 sums are exact in any order
    s = block_reduce(hu, f, "sum")
    assert s.dtype == np.float32
    np.testing.assert_array_equal(s, _reshaped(hu, f).sum(axis=(1, 3, 5)))
    np.testing.assert_array_equal(block_reduce(hu, f, "mean"),
                                  s / np.float32(f[0] * f[1] * f[2]))
    np.testing.assert_array_equal(block_reduce(mask, f, "sum", dtype=np.int32), count)
    assert len(block_parts(hu, f)) == f[0] * f[1] * f[2]


@pytest.mark.parametrize("f", [(1, 1, 1), (2, 2, 2), (3, 1, 2)])
def test_block_expand_is_the_nearest_block(f):
    c = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    shape = (4 * f[0] - 1, 5 * f[1], 6 * f[2] - 1)  # a partial last block on two axes
    up = block_expand(c, f, shape)
    assert up.shape == shape
    k, j, i = np.indices(shape)
    np.testing.assert_array_equal(up, c[k // f[0], j // f[1], i // f[2]])
    # the inverse of a reduction on the same blocks
    m = np.random.default_rng(2).random(shape) < 0.2
    assert (block_expand(block_reduce(m, f, "any"), f, shape) >= m).all()


def test_block_reduce_of_one_voxel_blocks():
    m = np.zeros((3, 4, 5), bool)
    x = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    assert block_reduce(m, (1, 1, 1), "any") is m
    assert block_reduce(x, (1, 1, 1), "max") is x
    assert block_reduce(x, (1, 1, 1), "mean") is x
    s = block_reduce(x, (1, 1, 1), "sum")
    assert s is not x and np.array_equal(s, x)
    with pytest.raises(ValueError):
        block_reduce(x, (2, 2, 2), "median")


def test_bounding_box_and_crop():
    m = np.zeros((10, 12, 14), bool)
    assert bounding_box(m) is None
    m[2:5, 3, 7:9] = True
    assert bounding_box(m) == (slice(2, 5), slice(3, 4), slice(7, 9))
    assert bounding_box(m, 3) == (slice(0, 8), slice(0, 7), slice(4, 12))
    assert bounding_box(m, [0, 1, 10]) == (slice(2, 5), slice(2, 5), slice(0, 14))
    vol = Volume(np.arange(m.size).reshape(m.shape), origin=(1.0, 2.0, 3.0),
                 spacing=(0.5, 0.7, 2.0), direction=(0, 1, 0, -1, 0, 0, 0, 0, 1))
    box = bounding_box(m)
    sub = crop(vol, box)
    np.testing.assert_array_equal(sub.array, vol.array[box])
    np.testing.assert_allclose(sub.index_to_world(np.zeros(3)), vol.index_to_world([2, 3, 7]))
    assert sub.spacing == vol.spacing and sub.direction == vol.direction
    other = crop(vol, box, m[box])
    assert other.array.dtype == bool and other.origin == sub.origin


def test_resolve_owner_search_box_and_whole_grid_agree():
    from twinsep.errors import InputError
    from twinsep.labels import resolve_owner

    rng = np.random.default_rng(0)
    tis = np.zeros((20, 22, 24), np.uint8)
    tis[2:18, 2:20, 2:22] = 1
    own = np.zeros(tis.shape, np.uint8)
    own[2:18, 2:20, 2:12] = 1
    own[2:18, 2:20, 12:22] = 2
    own[tis > 0] = np.where(rng.random(int((tis > 0).sum())) < 0.1, 3, own[tis > 0])
    own[8:10, 8:10, 10:14] = 0  # unowned head voxels
    vt, vo = Volume(tis, spacing=(1.0, 1.5, 2.0)), Volume(own, spacing=(1.0, 1.5, 2.0))
    full = resolve_owner(vt, vo)
    assert set(np.unique(full[tis > 0])) == {1, 2} and (full[tis == 0] == 0).all()
    np.testing.assert_array_equal(resolve_owner(vt, vo, search_mm=16.0), full)
    np.testing.assert_array_equal(resolve_owner(vt, vo, search_mm=0.5), full)  # falls back
    with pytest.raises(InputError):
        resolve_owner(vt, Volume(np.where(tis > 0, 3, 0).astype(np.uint8)))


def _ball(shape=(24, 26, 28), r=8.0) -> np.ndarray:
    k, j, i = np.indices(shape)
    c = (np.asarray(shape) - 1) / 2.0
    return (k - c[0]) ** 2 + (j - c[1]) ** 2 + (i - c[2]) ** 2 <= r * r


def test_mask_mesh_is_closed_in_world_mm_and_is_the_models_routine():
    from twinsep.mesh import LPS_MM, TAUBIN_LAMBDA, TAUBIN_MU, Mesh, mask_mesh
    from twinsep.models.surfaces import SurfaceSettings, extract_surface

    ball = _ball()
    vol = Volume(ball, origin=(-10.0, 5.0, 2.0), spacing=(0.8, 1.0, 1.2),
                 direction=(0, 0, 1, 1, 0, 0, 0, 1, 0))
    m = mask_mesh(ball, vol)
    assert isinstance(m, Mesh) and m.frame == LPS_MM and m.closed
    vox_mm3 = float(ball.sum()) * vol.voxel_volume_mm3
    assert m.volume_mm3 > 0 and abs(m.volume_mm3 - vox_mm3) / vox_mm3 < 0.05
    # the world frame: the centre of the mesh is the centre of the ball in world mm
    centre = vol.index_to_world((np.asarray(ball.shape) - 1) / 2.0)
    np.testing.assert_allclose(m.vertices.mean(0), centre, atol=0.3)
    # the models' surfaces are the same marching cubes
    ss = SurfaceSettings(mc_spacing_mm=0.0, smooth_iterations=4)
    ex = extract_surface(ball, vol, ss)
    sm = mask_mesh(ball, vol, smooth_iterations=4)
    np.testing.assert_array_equal(ex.vertices, sm.vertices)
    np.testing.assert_array_equal(ex.faces, sm.faces)
    assert (TAUBIN_LAMBDA, TAUBIN_MU) == (ss.taubin_lambda, ss.taubin_mu)
    moved = m.moved((1.0, 2.0, 3.0), "separated")
    assert moved.frame == "separated" and np.allclose(moved.vertices - m.vertices, [1, 2, 3])
    assert mask_mesh(np.zeros((4, 4, 4), bool), Volume(np.zeros((4, 4, 4)))) is None


def test_closedness_fix_closes_diagonal_contacts():
    """Voxels touching along edges only: marching cubes at exactly 0.5 resolves the saddles
    inconsistently and leaves the mesh open; the closedness fix (just below 0.5) joins the
    voxels into one closed mesh."""
    from twinsep.mesh import MC_LEVEL, is_closed, iso_surface, marching_cubes

    m = np.zeros((6, 6, 6), np.float32)
    for kji in ((3, 1, 3), (3, 2, 4), (4, 2, 3), (4, 3, 4)):
        m[kji] = 1.0
    vol = Volume(m)
    mesh, volume = marching_cubes(m, vol)
    assert mesh.closed and volume > 0
    assert MC_LEVEL < 0.5
    v, f = iso_surface(m, 0.5)
    assert not is_closed(v, f)


def test_stl_header_says_lps_and_round_trips(tmp_path):
    import trimesh

    from twinsep.exchange.mesh_files import STL_SPACE, stl_bytes, write_stl
    from twinsep.mesh import Mesh, mask_mesh

    m = mask_mesh(_ball((12, 12, 12), 4.0), Volume(np.zeros((12, 12, 12))))
    write_stl(tmp_path / "a.stl", m)
    data = (tmp_path / "a.stl").read_bytes()
    assert data.startswith(b"SPACE=LPS twinsep, world LPS mm") and STL_SPACE == "SPACE=LPS"
    write_stl(tmp_path / "b.stl", m.moved((5.0, 0.0, 0.0), "separated frame"))
    assert (tmp_path / "b.stl").read_bytes()[:80].rstrip() == b"SPACE=LPS twinsep, separated frame"
    assert stl_bytes(m.vertices, m.faces, "SPACE=LPS x")[:12] == b"SPACE=LPS x "
    back = trimesh.load(tmp_path / "a.stl", file_type="stl", process=True)
    assert len(back.faces) == m.n_faces and back.is_watertight
    np.testing.assert_allclose(back.area, m.area_mm2, rtol=1e-5)
    assert Mesh(back.vertices, back.faces).closed
