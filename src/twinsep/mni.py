"""The MNI ICBM152 2009a grey and white matter maps, shipped with twinsep.

``twinsep/data/mni_icbm152_09a_gm_wm.npz`` holds nilearn's 1 mm uint8 copies of the two
probability maps (0-255 = probability 0-1), unchanged, and their shared voxel-to-world
affine (RAS mm). Its notice and provenance: ``twinsep/data/mni_icbm152_09a_gm_wm.NOTICE.txt``.
The phantom's brains (:mod:`twinsep.phantom.anatomy`) and the classification's template
profile (:mod:`twinsep.identify.classification`) are made from them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np

DATA_FILE = "mni_icbm152_09a_gm_wm.npz"


@dataclass(frozen=True)
class MniMaps:
    """The two maps, indexed [i, j, k] of the 1 mm grid, and its affine."""

    gm: np.ndarray  # uint8 (197, 233, 189), grey matter probability * 255
    wm: np.ndarray  # uint8 (197, 233, 189), white matter probability * 255
    affine: np.ndarray  # float64 (4, 4), voxel index -> RAS mm


@functools.cache
def mni_maps() -> MniMaps:
    """Load the maps (once per process; about 0.2 s). The arrays are read-only."""
    with (
        (resources.files("twinsep") / "data" / DATA_FILE).open("rb") as f,
        np.load(f, allow_pickle=False) as z,
    ):
        arrays = {k: z[k] for k in ("gm", "wm", "affine")}
    for a in arrays.values():
        a.flags.writeable = False
    return MniMaps(**arrays)
