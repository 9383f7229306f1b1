"""Fixtures of the identify tests.

``box_pair(spacing=(2, 2, 2), euler=None, vessel="crossing", r_mm=4.0)``
    Factory: a synthetic pair with known answers, ``(tissues, owner)`` Volumes (see
    :func:`_box_pair`); built afresh on each call, so a test may change its arrays.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from twinsep.image import Volume


def _box_pair(spacing=(2.0, 2.0, 2.0), euler=None, vessel="crossing", r_mm=4.0):
    """Box head (100 x 80 x 160 mm), A below z = 0, B above; brains: touching spheres r 30.

    ``vessel``: "crossing" (cylinder along z from -40 to 40 mm at x = y = 20), "apart"
    (two cylinders, one per twin, 6 mm apart) or "stray" (A-only cylinder with 3 voxels
    given to B).
    """
    d = np.eye(3) if euler is None else Rotation.from_euler("xyz", euler, degrees=True).as_matrix()
    sp = np.asarray(spacing, float)
    n = np.ceil(200.0 / sp).astype(int)
    origin = -d @ (sp * (n - 1) / 2)
    vol = Volume(np.zeros(n[::-1], np.uint8), tuple(origin), tuple(sp), tuple(d.ravel()))
    x, y, z = vol.index_to_world(np.indices(vol.shape).reshape(3, -1).T).T
    t = np.zeros(x.size, np.uint8)
    head = (np.abs(x) < 50) & (np.abs(y) < 40) & (np.abs(z) < 80)
    t[head] = 1
    t[(x**2 + y**2 + (z + 30) ** 2 < 900) | (x**2 + y**2 + (z - 30) ** 2 < 900)] = 4
    tube = (x - 20) ** 2 + (y - 20) ** 2 < r_mm**2
    if vessel == "crossing":
        t[tube & (np.abs(z) < 40)] = 5
    elif vessel == "apart":
        t[tube & (z > -40) & (z < -3)] = 5
        t[tube & (z > 3) & (z < 40)] = 5
    o = np.where(head, np.where(z < 0, 1, 2), 0).astype(np.uint8)
    if vessel == "stray":
        t[tube & (z > -40) & (z < -1)] = 5
        stray = np.flatnonzero(tube & (z > -40) & (z < -1))[:3]
        o[stray] = 2
    return vol.with_array(t.reshape(vol.shape)), vol.with_array(o.reshape(vol.shape))


@pytest.fixture(scope="session")
def box_pair():
    """Factory ``box_pair(spacing, euler, vessel, r_mm) -> (tissues, owner)``."""
    return _box_pair
