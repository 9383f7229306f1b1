"""Label codes and colours shared by every stage.

Tissue codes (``labels/tissues.nii.gz``, the phantom's ``tissues.nii.gz``)::

    0 background, 1 scalp/soft tissue, 2 bone, 3 CSF/dura, 4 brain, 5 vessel

Owner codes (``labels/twins.nii.gz`` uses 0, 1, 2; the phantom's ``owner.nii.gz``
also uses 3 for the ambiguous zone within about 3 mm of the true interface)::

    0 background, 1 twin A (purple), 2 twin B (orange), 3 ambiguous

:func:`resolve_owner` gives every head voxel marked 0 or 3 to the nearest twin.
"""

from __future__ import annotations

import math
from enum import IntEnum

import numpy as np

from twinsep.errors import InputError
from twinsep.image import Volume, bounding_box


class Tissue(IntEnum):
    """Tissue label codes used everywhere in twinsep."""

    BACKGROUND = 0
    SCALP = 1
    BONE = 2
    CSF = 3  # CSF and dura
    BRAIN = 4
    VESSEL = 5


class Owner(IntEnum):
    """Owner label codes: which twin a voxel belongs to."""

    BACKGROUND = 0
    A = 1
    B = 2
    AMBIGUOUS = 3


#: Plain names of the tissues, as used in plan.json keys.
TISSUE_NAMES: dict[int, str] = {
    Tissue.SCALP: "scalp",
    Tissue.BONE: "bone",
    Tissue.CSF: "dura",
    Tissue.BRAIN: "brain",
    Tissue.VESSEL: "vessel",
}

#: Twin colours (sRGB, 0-255): twin A purple, twin B orange, shared vessels red.
TWIN_COLOURS: dict[str, tuple[int, int, int]] = {
    "A": (128, 0, 160),
    "B": (255, 140, 0),
    "shared": (220, 20, 30),
}

#: Colour name per twin, as used in the operating room.
TWIN_COLOUR_NAMES: dict[str, str] = {"A": "purple", "B": "orange"}


def resolve_owner(tissues: Volume, owner: Volume, *, search_mm: float | None = None
                  ) -> np.ndarray:
    """Owner codes 0/1/2: 0 outside the head (``tissues == 0``); inside it 1 (A) or 2 (B),
    voxels marked 0 or 3 taking the code of the nearest voxel of twin A or B (world mm).

    ``search_mm``: look for those nearest voxels first in the box of the unresolved voxels
    grown by ``search_mm`` (the answer is exact when every one lies nearer than that), and
    on the whole grid only otherwise; None: the whole grid at once.

    Raises
    ------
    InputError
        Head voxels to resolve, and no voxel of twin A or B.
    """
    from scipy import ndimage as ndi

    t = np.asarray(tissues.array)
    o = np.asarray(owner.array).astype(np.int16)
    head = t > 0
    known = head & ((o == Owner.A) | (o == Owner.B))
    out = np.where(known, o, 0).astype(np.uint8)
    todo = head & ~known
    if not todo.any():
        return out
    if not known.any():
        raise InputError("the owner map gives no voxel to twin A or twin B")
    sampling = tissues.spacing_kji
    if search_mm is not None:
        box = bounding_box(todo, [math.ceil(search_mm / s) + 1 for s in sampling])
        sub_known, sub_todo = known[box], todo[box]
        if sub_known.any():
            d, idx = ndi.distance_transform_edt(~sub_known, sampling=sampling,
                                                return_indices=True)
            if d[sub_todo].max() < search_mm:
                sub = out[box]
                sub[sub_todo] = sub[tuple(i[sub_todo] for i in idx)]
                return out
    _, idx = ndi.distance_transform_edt(~known, sampling=sampling, return_indices=True)
    out[todo] = out[tuple(i[todo] for i in idx)]
    return out
