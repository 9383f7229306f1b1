"""Build a phantom: placement of the twins, labels, CT and ground truth.

Geometry (world = ITK LPS mm): twin A's brain centroid at the origin with its long axis
along +z. The contact normal ``c`` is superior (0, 0, 1) tilted towards posterior by
``alpha = (180 - long_axis_angle) / 2``. Twin B is A turned by 180 degrees about
``t = (0, cos alpha, -sin alpha)`` (which maps c to -c, puts the long axes at the requested
angle and keeps the faces aligned: type I), then rotated about ``c`` by the axial
rotation. B's centre is placed so that its contact point lies ``fusion_depth`` inside
A's (or ``gap`` mm beyond it with ``separate``), shifted by ``junction_offset`` along x.

Labels per voxel: inside the head (smooth union of the two heads, each the brain
envelope grown by 8.5 mm), scalp and bone by true depth below the *combined* outer
surface (so none inside the junction; see
:func:`twinsep.phantom.placement.surface_depth`), then brain, vessel,
CSF/dura. The interface between
the twins is ``delta = sA - sB + 2 u = 0`` where ``sA, sB`` are the envelope distances and
``u`` the undulation; each voxel belongs to the twin on whose side it lies, which is the
nearest brain (envelope) rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twinsep.image import Volume
from twinsep.labels import Owner, Tissue
from twinsep.phantom.anatomy import BONE_MM, LAYERS_MM, SCALP_MM, affine_rows, rotation
from twinsep.phantom.placement import (
    NEAR_SURFACE_MM,
    Layout,
    layout,
    surface_depth,
)
from twinsep.phantom.spec import PhantomSpec
from twinsep.progress import Progress, silent

#: Hounsfield units per tissue (brain: grey 38, white 28).
HU = {"air": -1000.0, "scalp": 40.0, "bone": 850.0, "csf": 8.0, "grey": 38.0, "white": 28.0,
      "vessel": 280.0}
AMBIGUOUS_MM = 3.0
OBLIQUE_AXIS = np.array([1.0, 2.0, 3.0]) / np.sqrt(14.0)
_SLAB_VOXELS = 1_200_000


@dataclass
class Phantom:
    """A phantom: CT (HU, int16), tissue codes, owner codes and ground truth."""

    ct: Volume
    tissues: Volume
    owner: Volume
    truth: dict
    spec: PhantomSpec


def _grid(spec: PhantomSpec, lay: Layout) -> Volume:
    """An empty uint8 volume whose grid covers both heads (4 mm margin)."""
    from twinsep.phantom.anatomy import template

    tm = template()
    corners = []
    for tw in (lay.a, lay.b):
        inside = np.argwhere(tm.sdf * tw.scale < LAYERS_MM + 3.0) * 2.0
        lo, hi = inside.min(0) - 2, inside.max(0) + 2
        box = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])], float)
        local = np.empty_like(box)
        local[:, 0] = (tm.centroid_vox[0] - box[:, 0]) * tw.scale
        local[:, 1] = (tm.centroid_vox[1] - box[:, 1]) * tw.scale
        local[:, 2] = (box[:, 2] - tm.centroid_vox[2]) * tw.scale
        corners.append(tw.to_world(local))
    world = np.concatenate(corners)
    d = rotation(OBLIQUE_AXIS, spec.oblique) if spec.oblique else np.eye(3)
    g = world @ d  # grid-frame coordinates
    margin = 4.0 + spec.deformation
    gmin, gmax = g.min(0) - margin, g.max(0) + margin
    sp = np.asarray(spec.spacing, float)
    size = np.ceil((gmax - gmin) / sp).astype(int) + 1
    origin = d @ gmin
    return Volume(np.zeros(size[::-1], np.uint8), tuple(origin), tuple(sp),
                  tuple(d.ravel()))


def _slab_world(vol: Volume, k0: int, k1: int) -> np.ndarray:
    _, nj, ni = vol.shape
    k, j, i = np.meshgrid(np.arange(k0, k1), np.arange(nj), np.arange(ni), indexing="ij")
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], 1).astype(float)
    return affine_rows(ijk, vol.affine[:3, :3], vol.affine[:3, 3])


def make_phantom(spec: PhantomSpec,
                 progress: Progress | None = None) -> Phantom:
    """Generate a phantom.

    Parameters
    ----------
    spec : PhantomSpec
        Options; the same spec (seed included) gives identical arrays.
    progress : callable, optional
        ``progress(message, fraction)``.

    Returns
    -------
    Phantom
    """
    from scipy import ndimage as ndi

    from twinsep.phantom.truth import compute_truth
    from twinsep.phantom.vessels import build_vessels

    report = progress or silent
    lay = layout(spec)
    grid = _grid(spec, lay)
    vessels = build_vessels(
        lay.a, lay.b, lay.fields, shared=bool(spec.shared_sinus),
        conjoined=not spec.separate, centre=lay.junction_centre, c=lay.c, e1=lay.e1,
        e2=lay.e2, undulation_mm=spec.undulation, separate=spec.separate,
        **({"ring_radius_mm": spec.growth().sinus_radius_mm} if spec.grows else {}))
    report("laying out the heads", 0.05)
    nk, nj, ni = grid.shape
    step = max(1, _SLAB_VOXELS // (nj * ni))
    partial = spec.fusion == "partial" and not spec.separate
    shape = grid.shape
    head = np.zeros(shape, bool)
    brain = np.zeros(shape, bool)
    terr_a = np.zeros(shape, bool)
    amb = np.zeros(shape, bool)
    plate = np.zeros(shape, bool)
    vessel = np.zeros(shape, np.uint8)
    wmf = np.zeros(shape, np.uint8)
    shallow = np.zeros(shape, np.uint8)  # surface_depth in 0.1 mm, clipped to 25.5 mm
    for k0 in range(0, nk, step):
        k1 = min(nk, k0 + step)
        xyz = _slab_world(grid, k0, k1)
        sa, sb, delta, h, pa, wa, pb, wb = lay.fields(xyz, brain=True)
        sl = np.s_[k0:k1]
        s3 = (k1 - k0, nj, ni)
        hd = h < 0
        ta = delta < 0
        head[sl] = hd.reshape(s3)
        terr_a[sl] = ta.reshape(s3)
        brain[sl] = (hd & np.where(ta, pa > 0.5, pb > 0.5)).reshape(s3)
        wmf[sl] = np.round(255 * np.clip(np.where(ta, wa, wb), 0, 1)).astype(np.uint8).reshape(s3)
        amb[sl] = (np.abs(delta) / 2 < AMBIGUOUS_MM).reshape(s3)
        if partial:
            plate[sl] = (np.abs(delta) / 2 < BONE_MM / 2).reshape(s3)
        depth = surface_depth(lay, xyz, sa, sb, h)
        shallow[sl] = np.clip(np.round(depth * 10), 0, 255).astype(np.uint8).reshape(s3)
        vc = np.zeros(len(hd), np.uint8)
        if hd.any():
            vc[hd] = vessels.classify(xyz[hd])
        vessel[sl] = vc.reshape(s3)
        report("tissues of each head", 0.05 + 0.6 * k1 / nk)
    del xyz, sa, sb, delta, h, pa, wa, pb, wb, depth
    # --- pass 2: depth below the combined surface, labels, base HU -----------------
    sp_kji = grid.spacing_kji
    margin = int(np.ceil((NEAR_SURFACE_MM + 2.0) / sp_kji[0])) + 1
    tissues = np.zeros(shape, np.uint8)
    owner = np.zeros(shape, np.uint8)
    hu = np.full(shape, HU["air"], np.float32)
    for k0 in range(0, nk, step):
        k1 = min(nk, k0 + step)
        m0, m1 = max(0, k0 - margin), min(nk, k1 + margin)
        edt = ndi.distance_transform_edt(head[m0:m1], sampling=sp_kji)[k0 - m0:k1 - m0]
        sl = np.s_[k0:k1]
        hd = head[sl]
        depth = np.where(edt < NEAR_SURFACE_MM, shallow[sl] / 10.0, 99.0)
        t = np.zeros(hd.shape, np.uint8)
        t[hd] = Tissue.CSF
        t[hd & brain[sl]] = Tissue.BRAIN
        if partial:
            t[hd & plate[sl] & ~brain[sl]] = Tissue.BONE
        t[hd & (vessel[sl] > 0)] = Tissue.VESSEL
        t[hd & (depth < SCALP_MM + BONE_MM)] = Tissue.BONE
        t[hd & (depth < SCALP_MM)] = Tissue.SCALP
        tissues[sl] = t
        o = np.where(terr_a[sl], Owner.A, Owner.B).astype(np.uint8)
        o[amb[sl]] = Owner.AMBIGUOUS
        o[~hd] = Owner.BACKGROUND
        owner[sl] = o
        lut = np.array([HU["air"], HU["scalp"], HU["bone"], HU["csf"], 0.0, HU["vessel"]],
                       np.float32)
        v = lut[t]
        isb = t == Tissue.BRAIN
        v[isb] = HU["grey"] + (HU["white"] - HU["grey"]) * (wmf[sl][isb] / 255.0)
        hu[sl] = v
        report("CT intensities", 0.65 + 0.25 * k1 / nk)
    del head, brain, amb, plate, wmf, shallow
    # --- CT: partial-volume blur and noise -------------------------------------------
    if spec.blur > 0:
        sigma = [spec.blur / s for s in sp_kji]
        ndi.gaussian_filter(hu, sigma, output=hu, mode="nearest")
    rng = np.random.default_rng([spec.seed, 1])
    ct = np.empty(shape, np.int16)
    for k0 in range(0, nk, step):
        k1 = min(nk, k0 + step)
        block = hu[k0:k1]
        if spec.noise > 0:
            block = block + spec.noise * rng.standard_normal(block.shape, dtype=np.float32)
        ct[k0:k1] = np.clip(np.round(block), -1024, 3071).astype(np.int16)
    del hu
    report("ground truth", 0.95)
    ct_vol = grid.with_array(ct)
    tis_vol = grid.with_array(tissues)
    own_vol = grid.with_array(owner)
    truth = compute_truth(spec, lay, vessels, tis_vol, own_vol, terr_a, vessel)
    report("done", 1.0)
    return Phantom(ct_vol, tis_vol, own_vol, truth, spec)


#: What :func:`write_phantom` writes (an overwrite replaces these only).
PHANTOM_ENTRIES = ("ct.nii.gz", "tissues.nii.gz", "owner.nii.gz", "truth.json", "dicom",
                   ".twinsep")


def write_phantom(phantom: Phantom, out: Path, *, dicom: bool = False,
                  overwrite: bool = False) -> None:
    """Write ``ct.nii.gz``, ``tissues.nii.gz``, ``owner.nii.gz``, ``truth.json`` (and
    ``dicom/`` with ``dicom``) into the folder ``out``, atomically."""
    from twinsep.casefolder import atomic_output_dir, write_json

    with atomic_output_dir(Path(out), overwrite=overwrite, kind="phantom",
                            entries=PHANTOM_ENTRIES) as tmp:
        phantom.ct.write(tmp / "ct.nii.gz")
        phantom.tissues.write(tmp / "tissues.nii.gz")
        phantom.owner.write(tmp / "owner.nii.gz")
        write_json(tmp / "truth.json", phantom.truth)
        if dicom:
            from twinsep.exchange.dicom import write_ct_series

            write_ct_series(phantom.ct, tmp / "dicom", patient_name="PHANTOM^TWINS",
                            patient_id="PHANTOM", series_description="twinsep phantom CT venogram")
