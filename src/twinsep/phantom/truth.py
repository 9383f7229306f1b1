"""Ground truth of a phantom (``truth.json``).

Volumes and centroids are counted on the image grid (the labels as written). Areas and
distances that describe the junction are measured on the analytic fields on a fixed 1.5 mm
grid aligned with the junction (and 0.3 mm around each vessel crossing), so they do not
depend on the image grid's spacing or direction.

Classification follows Stone & Goodrich: the fusion is *total* if and only if a dural
venous sinus is shared (here: the circular sinus crossing the interface), so a phantom
built with ``fusion="total"`` but without the shared sinus reports ``partial``;
orientation is *angular* when the long axes meet at < 140 degrees, else *vertical*; a
total vertical fusion is type I (axial rotation < 40), II (> 140) or III (between).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from twinsep.image import Volume
from twinsep.labels import TISSUE_NAMES, Tissue
from twinsep.mesh import iso_surface
from twinsep.phantom.anatomy import LAYERS_MM

if TYPE_CHECKING:
    from twinsep.phantom.placement import Layout
    from twinsep.phantom.spec import PhantomSpec
    from twinsep.phantom.vessels import Vessels

#: Step (mm) of the junction-aligned grid for areas and distances.
STEP_MM = 1.5
_FINE = 0.3  # mm, grid around each vessel crossing
_BOX = 6.0  # mm, half size of that grid


def classify(spec: PhantomSpec, shared_crosses: bool) -> dict:
    """Stone & Goodrich classification of the phantom as built."""
    rot = abs(((spec.axial_rotation + 180.0) % 360.0) - 180.0)
    conjoined = not spec.separate
    fusion = ("total" if shared_crosses else "partial") if conjoined else None
    orientation = None
    if conjoined:
        orientation = "angular" if spec.long_axis_angle < 140.0 else "vertical"
    typ = None
    if fusion == "total" and orientation == "vertical":
        typ = "I" if rot < 40.0 else ("II" if rot > 140.0 else "III")
    return {
        "fusion": fusion,
        "orientation": orientation,
        "type": typ,
        "axial_rotation_deg": rot,
        "long_axis_angle_deg": float(spec.long_axis_angle),
    }


def _mesh_area(field: np.ndarray, mask: np.ndarray | None, spacing: float):
    """Triangles of the zero surface: (centroids in index units, areas in mm^2)."""
    if field.min() >= 0 or field.max() <= 0:
        return np.zeros((0, 3)), np.zeros(0)
    if mask is not None and not mask.any():
        return np.zeros((0, 3)), np.zeros(0)
    try:
        verts, faces = iso_surface(field, 0.0, allow_degenerate=True, mask=mask)
    except (ValueError, RuntimeError):
        return np.zeros((0, 3)), np.zeros(0)
    tri = verts[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    return tri.mean(1), area * spacing**2


def _frame_points(lay: Layout, centre: np.ndarray, half: tuple[float, float, float],
                  step: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    axes = [np.arange(-h, h + step / 2, step) for h in half]
    from twinsep.phantom.anatomy import affine_rows

    u, v, w = np.meshgrid(*axes, indexing="ij")
    uvw = np.stack([u.ravel(), v.ravel(), w.ravel()], 1)
    pts = affine_rows(uvw, np.stack([lay.e1, lay.e2, lay.c], 1), centre)
    return pts, u.shape


def junction_metrics(lay: Layout) -> dict:
    """Junction area, brain contact area and distances on a junction-aligned grid.

    ``junction_area_cm2`` is the interface inside the whole head (skin to skin);
    ``junction_skull_area_cm2`` its part inside the outer skull surface, by the labelling
    rule of the builder (scalp where the depth below the combined surface is under
    ``SCALP_MM`` near the outside): where soft tissue fills the crease between the heads the
    rest of the interface runs through scalp.
    """
    from scipy import ndimage as ndi

    from twinsep.phantom.anatomy import SCALP_MM
    from twinsep.phantom.placement import NEAR_SURFACE_MM, surface_depth

    half = (84.0, 84.0, 36.0)
    pts, shape = _frame_points(lay, lay.junction_centre, half, STEP_MM)
    sa, sb, delta, h, pa, _, pb, _ = lay.fields(pts, brain=True)
    below = surface_depth(lay, pts, sa, sb, h).reshape(shape)
    delta = delta.reshape(shape)
    head = (h < 0).reshape(shape)
    near = ndi.distance_transform_edt(head, sampling=STEP_MM) < NEAR_SURFACE_MM
    cranium = head & ~(near & (below < SCALP_MM))
    ha = (sa - LAYERS_MM).reshape(shape)
    hb = (sb - LAYERS_MM).reshape(shape)
    pa = pa.reshape(shape)
    pb = pb.reshape(shape)
    cen, area = _mesh_area(delta, head, STEP_MM)
    junction = float(area.sum())
    skull = float(_mesh_area(delta, cranium, STEP_MM)[1].sum())
    contact = 0.0
    if len(area):
        from scipy.ndimage import map_coordinates

        qa = map_coordinates(pa, cen.T, order=1)
        qb = map_coordinates(pb, cen.T, order=1)
        contact = float(area[(qa > 0.5) & (qb > 0.5)].sum())
    brain_a = head & (pa > 0.5) & (delta < 0)
    brain_b = head & (pb > 0.5) & (delta >= 0)
    if contact > 0:
        brain_dist = 0.0
    elif brain_a.any() and brain_b.any():
        d = ndi.distance_transform_edt(~brain_b, sampling=STEP_MM)
        brain_dist = max(0.0, float(d[brain_a].min()) - STEP_MM)
    else:
        brain_dist = None
    if lay.separate:
        closest = float(max(0.0, hb[ha <= 0].min())) if (ha <= 0).any() else None
    else:
        closest = 0.0
    return {
        "junction_area_cm2": junction / 100.0,
        "junction_skull_area_cm2": skull / 100.0,
        "brain_contact_area_cm2": contact / 100.0,
        "brain_min_distance_mm": brain_dist,
        "closest_distance_mm": closest,
    }


def vessel_crossings(lay: Layout, vessels: Vessels) -> list[dict]:
    """Where the sinus system crosses the interface, with the cross-section there."""
    out = []
    for seg in vessels.connectors:
        s = np.linspace(0.0, 1.0, 801)
        line = seg.a[None] + s[:, None] * (seg.b - seg.a)[None]
        d = lay.fields(line)[2]
        change = np.nonzero(np.sign(d[:-1]) != np.sign(d[1:]))[0]
        for i in change:
            f = d[i] / (d[i] - d[i + 1])
            x = line[i] + f * (line[i + 1] - line[i])
            pts, shape = _frame_points(lay, x, (_BOX, _BOX, _BOX), _FINE)
            dd = lay.fields(pts)[2].reshape(shape)
            cen, area = _mesh_area(dd, None, _FINE)
            if len(area):
                world = (x[None] + (cen[:, 0:1] * _FINE - _BOX) * lay.e1
                         + (cen[:, 1:2] * _FINE - _BOX) * lay.e2
                         + (cen[:, 2:3] * _FINE - _BOX) * lay.c)
                csa = float(area[seg.contains(world)].sum())
            else:
                csa = 0.0
            out.append({"world_mm": [float(v) for v in x], "cross_section_mm2": csa})
    out.sort(key=lambda c: c["world_mm"])
    return out


def _centroid(mask: np.ndarray, vol: Volume) -> list[float] | None:
    n = int(mask.sum())
    if n == 0:
        return None
    kji = [float((mask.sum(axis=tuple(a for a in range(3) if a != ax))
                  * np.arange(mask.shape[ax])).sum()) / n for ax in range(3)]
    return [float(v) for v in vol.index_to_world(np.array(kji))]


def compute_truth(spec: PhantomSpec, lay: Layout, vessels: Vessels, tissues: Volume,
                  owner: Volume, terr_a: np.ndarray, vessel_class: np.ndarray) -> dict:
    """The ``truth.json`` dictionary."""
    t = tissues.array
    ml = tissues.voxel_volume_ml
    code = t.astype(np.int64) * 2 + (~terr_a)
    counts = np.bincount(code.ravel(), minlength=12)
    del code
    volumes = {
        twin: {TISSUE_NAMES[tc]: float(counts[int(tc) * 2 + side]) * ml
               for tc in (Tissue.SCALP, Tissue.BONE, Tissue.CSF, Tissue.BRAIN, Tissue.VESSEL)}
        for twin, side in (("A", 0), ("B", 1))
    }
    crossings = vessel_crossings(lay, vessels)
    crosses = len(crossings) > 0
    brain = t == Tissue.BRAIN
    centroids = {"A": _centroid(brain & terr_a, tissues), "B": _centroid(brain & ~terr_a, tissues)}
    del brain
    shared_ml = float(((t == Tissue.VESSEL) & (vessel_class == 2)).sum()) * ml
    z = np.array([0.0, 0.0, 1.0])
    ant = np.array([0.0, -1.0, 0.0])
    truth = {
        "spec": spec.dump(),
        "conjoined": not spec.separate,
        "classification": classify(spec, crosses),
        "tissue_volumes_ml": volumes,
        "shared_vessel": {
            "crosses": crosses,
            "cross_section_mm2": float(sum(c["cross_section_mm2"] for c in crossings)),
            "crossings": crossings,
        },
        "shared_vessel_volume_ml": shared_ml,
        "brain_centroids_mm": centroids,
        "long_axes": {"A": list(lay.a.rot @ z), "B": list(lay.b.rot @ z)},
        "anterior": {"A": list(lay.a.rot @ ant), "B": list(lay.b.rot @ ant)},
        "geometry": tissues.geometry(),
    }
    truth.update(junction_metrics(lay))
    if spec.grows:
        g = spec.growth()
        truth["growth"] = {
            "age_months": g.age_months,
            "scale": g.scale,
            "scale_a": g.scale_a,
            "scale_b": g.scale_b,
            "fusion_depth_mm": g.fusion_depth_mm,
            "sinus_radius_mm": g.sinus_radius_mm,
            "placement": {
                "rotation_deg": list(g.rotation_deg),
                "translation_mm": list(g.translation_mm),
                "matrix": g.matrix(),
                "convention": "world = R anatomy + t, R = Rz Ry Rx about the world origin",
            },
        }
    return truth
