"""Label codes and colours shared by every stage.

Tissue codes (``labels/tissues.nii.gz``, the phantom's ``tissues.nii.gz``)::

    0 background, 1 scalp/soft tissue, 2 bone, 3 CSF/dura, 4 brain, 5 vessel

Owner codes (``labels/twins.nii.gz`` uses 0, 1, 2; the phantom's ``owner.nii.gz``
also uses 3 for the ambiguous zone within about 3 mm of the true interface)::

    0 background, 1 twin A (purple), 2 twin B (orange), 3 ambiguous
"""

from __future__ import annotations

from enum import IntEnum


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
