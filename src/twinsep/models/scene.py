"""The layers of the 3-D model: each twin's tissues, the shared vessels, the cut surface.

Layers and their label values (also the label values of ``models/segmentation.seg.nrrd``)::

    1-5    A/scalp, A/bone, A/dura, A/brain, A/vessel
    6-10   B/scalp, B/bone, B/dura, B/brain, B/vessel
    11...  shared/vessel-1, shared/vessel-2, ...  (vessels with both owners; red)

``A/vessel`` and ``B/vessel`` hold each twin's own vessels, without the shared ones. The
owner map is resolved first (head voxels labelled 0 or 3 go to the nearest twin, as in
:func:`twinsep.labels.resolve_owner`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from twinsep.colours import (
    CUT_SURFACE_RGB,
    OPACITY,
    RGB,
    shared_vessel_colour,
    tissue_colour,
)
from twinsep.image import Volume
from twinsep.labels import TISSUE_NAMES, Owner, Tissue, resolve_owner
from twinsep.models.surfaces import Surface, SurfaceSettings, extract_surface, finish_surface
from twinsep.progress import Progress

#: Tissues in the order of their layers (outside in).
LAYER_TISSUES: tuple[Tissue, ...] = (Tissue.SCALP, Tissue.BONE, Tissue.CSF, Tissue.BRAIN,
                                     Tissue.VESSEL)
#: First label value of the shared vessels.
SHARED_LABEL_START = 2 * len(LAYER_TISSUES) + 1


@dataclass
class Layer:
    """One part of the model.

    Attributes
    ----------
    name : str
        Node name in the GLB, e.g. ``'A/brain'``, ``'shared/vessel-1'``, ``'cut-surface'``.
    twin : str or None
        ``'A'``, ``'B'``, or None (shared vessels, cut surface).
    tissue : str
        ``'scalp'``, ``'bone'``, ``'dura'``, ``'brain'``, ``'vessel'``, or ``'cut-surface'``.
    colour : (3,) int
        sRGB 0-255.
    opacity : float
        1 opaque, < 1 translucent.
    label : int or None
        Label value in the segmentation (None for the cut surface).
    surface : Surface or None
        The mesh (world LPS mm) and its history; None for an empty layer.
    closed : bool
        Whether the layer should be watertight (every layer but the cut surface).
    vessel_id : int or None
        Id of a shared vessel (as in plan.json ``shared.vessels[*].id``).
    stage : str
        ``'joined'`` (the scan: the twins as they are) or ``'separated'`` (after the cut:
        :mod:`twinsep.models.separated`, in the separated frame).
    source_stl : str or None
        An STL already in ``models/`` (relative to it) that holds this layer; None: the
        layer's STL is written to ``models/stl/`` when it is closed.
    """

    name: str
    twin: str | None
    tissue: str
    colour: RGB
    opacity: float
    label: int | None
    surface: Surface | None = None
    closed: bool = True
    vessel_id: int | None = None
    mesh: object = field(default=None, repr=False)
    stage: str = "joined"
    source_stl: str | None = None

    @property
    def file_stem(self) -> str:
        """File name stem: ``'A-brain'``, ``'shared-vessel-1'``, ``'cut-surface'``."""
        return self.name.replace("/", "-")


def resolved_owner(tissues: Volume, owner: Volume) -> np.ndarray:
    """Owner 0/1/2 per voxel: 0 outside the head, head voxels marked 0 or 3 go to the
    nearest twin (see :func:`twinsep.labels.resolve_owner`)."""
    return resolve_owner(tissues, owner)


def _shared_vessel_components(tissues: Volume, own: np.ndarray
                              ) -> tuple[tuple[slice, ...], np.ndarray, list[int]]:
    """Component labels of the vessels (on the vessels' bounding box, one voxel wider) and
    the shared ones among them, largest first (see :func:`shared_vessel_labels`)."""
    from twinsep.identify import shared as sh

    vessel = np.asarray(tissues.array) == Tissue.VESSEL
    found_box = ndi.find_objects(vessel.view(np.uint8))
    if not found_box:
        return (), np.zeros((0, 0, 0), np.int32), []
    # the bridging dilation reaches one voxel out: crop one voxel wider; labels are numbered
    # in raster order, which a crop keeps, so the numbers are those of the full grid
    box = tuple(slice(max(b.start - 1, 0), min(b.stop + 1, n))
                for b, n in zip(found_box[0], vessel.shape, strict=True))
    vessel = vessel[box]
    structure = np.ones((3, 3, 3), bool) if sh.VESSEL_CONNECTIVITY == 26 else None
    bridged = ndi.binary_dilation(vessel, structure=structure) if sh.BRIDGE_GAPS else vessel
    lab, n = ndi.label(bridged, structure=structure)
    lab[~vessel] = 0
    o = own[box]
    n_a = np.bincount(lab[o == Owner.A], minlength=n + 1)
    n_b = np.bincount(lab[o == Owner.B], minlength=n + 1)
    vvox = tissues.voxel_volume_mm3
    found = []
    for c in range(1, n + 1):
        total, minor = n_a[c] + n_b[c], min(n_a[c], n_b[c])
        if total == 0 or minor == 0:
            continue
        if minor / total < sh.MIN_MINOR_SHARE or minor * vvox < sh.MIN_MINOR_VOLUME_MM3:
            continue
        found.append((int(total), c))
    found.sort(key=lambda x: (-x[0], x[1]))
    return box, lab, [c for _, c in found]


def shared_vessel_labels(tissues: Volume, own: np.ndarray) -> list[np.ndarray]:
    """Boolean masks of the shared vessel structures, largest first.

    Same rule as :func:`twinsep.identify.shared.shared_vessels` (26-connected components of the
    vessel label, one-voxel gaps bridged, with a minor owner share above the thresholds),
    so the n-th mask is the vessel plan.json calls ``id = n``.
    """
    box, lab, comps = _shared_vessel_components(tissues, own)
    out = []
    for c in comps:
        m = np.zeros(own.shape, bool)
        m[box] = lab == c
        out.append(m)
    return out


#: Slices of the label map built at a time (bounds the temporary index arrays).
_CHUNK = 32


def layer_labelmap(tissues: Volume, owner: Volume, own: np.ndarray | None = None
                   ) -> tuple[Volume, list[Layer]]:
    """The label map of the layers (see the module docstring) and the (empty) layers.

    ``own`` is the resolved owner (:func:`resolved_owner`) when already computed.

    Returns
    -------
    labelmap : Volume
        uint8 label values on the scan's grid.
    layers : list of Layer
        One per label value present, in label order (meshes not built yet).
    """
    t = np.asarray(tissues.array)
    if own is None:
        own = resolved_owner(tissues, owner)
    layers: list[Layer] = []
    # label of (owner, tissue) by a look-up table: lut[owner * 256 + tissue]
    lut = np.zeros(256 * 256, np.uint8)
    value = 1
    for twin, code in (("A", Owner.A), ("B", Owner.B)):
        for tissue in LAYER_TISSUES:
            name = TISSUE_NAMES[tissue]
            lut[int(code) * 256 + int(tissue)] = value
            layers.append(Layer(f"{twin}/{name}", twin, name, tissue_colour(twin, name),
                                OPACITY["tissue"], value))
            value += 1
    lab = np.empty(t.shape, np.uint8)
    for k in range(0, t.shape[0], _CHUNK):
        sl = slice(k, k + _CHUNK)
        tt, oo = t[sl], own[sl]
        if tt.dtype != np.uint8:  # codes outside 0-255 have no layer
            tt = np.where((tt >= 0) & (tt < 256), tt, 0)
        if oo.dtype != np.uint8:
            oo = np.where((oo >= 0) & (oo < 256), oo, 0)
        idx = oo.astype(np.uint16) << 8
        idx |= tt.astype(np.uint16)
        np.take(lut, idx, out=lab[sl])
    box, comps_lab, comps = _shared_vessel_components(tissues, own)
    if comps:
        sub = lab[box]
        for n, c in enumerate(comps, start=1):
            if value > 255:
                break
            sub[comps_lab == c] = value
            layers.append(Layer(f"shared/vessel-{n}", None, "vessel", shared_vessel_colour(),
                                OPACITY["shared-vessel"], value, vessel_id=n))
            value += 1
    present = np.bincount(lab.ravel(), minlength=256)
    layers = [ly for ly in layers if present[ly.label]]
    return tissues.with_array(lab), layers


def face_budgets(raw_faces: list[int], settings: SurfaceSettings) -> list[int]:
    """Face budget per layer: at most ``max_faces_layer`` each, at most ``max_faces_total``
    in all, shared in proportion to the extracted sizes."""
    total = sum(raw_faces)
    scale = min(1.0, settings.max_faces_total / total) if total else 1.0
    return [max(100, min(settings.max_faces_layer, int(n * scale))) for n in raw_faces]


def build_layers(labelmap: Volume, layers: list[Layer], settings: SurfaceSettings,
                 progress: Progress | None = None) -> list[Layer]:
    """Build the surface of every layer (in place; also returned).

    Every layer is extracted and smoothed first (on its own bounding box); the face budget
    is then shared out from the real extracted sizes and each layer decimated to its share.
    """
    lab = np.asarray(labelmap.array)
    boxes = ndi.find_objects(lab)
    total = 2 * len(layers)
    extracted = []
    for n, ly in enumerate(layers):
        if progress is not None:
            progress("surface meshes", n / max(total, 1))
        box = boxes[ly.label - 1] if ly.label - 1 < len(boxes) else None
        ex = None if box is None else extract_surface(lab[box] == ly.label, labelmap,
                                                      settings, box=box)
        extracted.append(ex)
    budgets = face_budgets([0 if ex is None else ex.n_faces for ex in extracted], settings)
    for n, (ly, ex, budget) in enumerate(zip(layers, extracted, budgets, strict=True)):
        if progress is not None:
            progress("surface meshes", (len(layers) + n) / max(total, 1))
        ly.surface = None if ex is None else finish_surface(ex, budget)
        ly.mesh = None if ly.surface is None else ly.surface.mesh
    if progress is not None:
        progress("surface meshes", 1.0)
    return layers


def cut_surface_layer(path) -> Layer | None:
    """The separation surface (``models/cut_surface.ply``, world mm) as a translucent,
    open layer; None when the file is missing or empty."""
    import trimesh

    from twinsep.errors import InputError

    if not path.exists():
        return None
    try:
        mesh = trimesh.load(path, file_type="ply", process=True, force="mesh")
    except Exception as exc:
        raise InputError(f"{path}: not a readable PLY mesh ({exc})") from None
    if len(mesh.faces) == 0:
        return None
    return Layer("cut-surface", None, "cut-surface", CUT_SURFACE_RGB, OPACITY["cut-surface"],
                 None, closed=False, mesh=mesh)
