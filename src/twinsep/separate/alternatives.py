"""The alternatives compared side by side, each a cut measured in the same way.

(a) ``min_risk``      the minimum-risk cut;
(b) ``sinus_to_a``    the shared sinus kept by twin A (the cut passes on B's side of it);
(c) ``sinus_to_b``    the shared sinus kept by twin B (the cut passes on A's side of it);
(d) ``plane``         a plane given by the user (point + normal, world mm).

The shared sinus is the vessel component (26-connected vessel voxels) that holds voxels
of both twins in the identity map (the largest one if several); "the sinus" proper is its
part within ``sinus_mm`` of the identity interface. For (b)/(c) that part is forced to the
keeping twin (infinite terminal links) and the rest of the component on the other twin's
side, beyond ``sinus_mm``, to the other twin.
"""

from __future__ import annotations

import numpy as np

from twinsep.image import Volume
from twinsep.separate.graphcut import interface_mask, near_voxels
from twinsep.separate.metrics import vessels_of_both

_A, _B = 1, 2

#: Alternative keys in table order, with their letters and titles.
ALTERNATIVES: dict[str, tuple[str, str]] = {
    "min_risk": ("a", "minimum risk"),
    "sinus_to_a": ("b", "shared sinus kept by twin A"),
    "sinus_to_b": ("c", "shared sinus kept by twin B"),
    "plane": ("d", "user plane"),
}


def resolve_choice(text: str) -> str:
    """Alternative key from a key, a letter (a-d) or a hyphenated key."""
    t = text.strip().lower().replace("-", "_")
    for key, (letter, _) in ALTERNATIVES.items():
        if t in (key, letter):
            return key
    from twinsep.errors import InputError

    raise InputError(
        f"--choose must be one of {', '.join(ALTERNATIVES)} (or a-d), got {text!r}"
    )


def shared_sinus(
    vessel_labels: tuple[np.ndarray, int],
    owner: np.ndarray,
    counts: tuple[np.ndarray, np.ndarray] | None = None,
) -> int | None:
    """Label of the largest vessel component with voxels of both twins, or None.

    ``counts`` (voxels of A and of B per component) replaces counting on ``owner``.
    """
    lab, n = vessel_labels
    if n == 0:
        return None
    both, va, vb = vessels_of_both(lab, n, owner, counts)
    if both.size == 0:
        return None
    tot = va[both] + vb[both]
    return int(both[np.argmax(tot)])  # argmax: first (lowest label) on ties


def sinus_constraints(
    vessel_labels: tuple[np.ndarray, int],
    comp: int,
    owner: np.ndarray,
    spacing_kji: tuple[float, float, float],
    keeper: int,
    sinus_mm: float,
    near: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Force map (0 free, 1 A, 2 B) for "sinus kept by ``keeper``" and the sinus mask.

    ``near`` (voxels within ``sinus_mm`` of the identity interface, at least on the
    component) may be given when already known.
    """
    lab, _ = vessel_labels
    comp_mask = lab == comp
    if near is None:
        near = near_voxels(interface_mask(owner), sinus_mm, spacing_kji)
    sinus = comp_mask & near
    other = _B if keeper == _A else _A
    force = np.zeros(owner.shape, dtype=np.uint8)
    force[comp_mask & ~near & (owner == other)] = other
    force[sinus] = keeper
    return force, sinus


def plane_owner(
    tissue: np.ndarray,
    owner0: np.ndarray,
    volume: Volume,
    point_mm: tuple[float, float, float],
    normal_mm: tuple[float, float, float],
) -> np.ndarray:
    """Owner by side of a plane: twin A gets the side holding most of A's identity voxels."""
    from twinsep.errors import InputError

    n = np.asarray(normal_mm, dtype=float)
    if not np.isfinite(n).all() or np.linalg.norm(n) == 0:
        raise InputError("--plane needs a non-zero normal NX,NY,NZ")
    n = n / np.linalg.norm(n)
    m = volume.affine[:3, :3]  # columns: world step of i, j, k
    a_ijk = m.T @ n
    c = float((volume.affine[:3, 3] - np.asarray(point_mm, dtype=float)) @ n)
    nk, nj, ni = tissue.shape
    sd = (
        (a_ijk[2] * np.arange(nk, dtype=np.float32))[:, None, None]
        + (a_ijk[1] * np.arange(nj, dtype=np.float32))[None, :, None]
        + (a_ijk[0] * np.arange(ni, dtype=np.float32))[None, None, :]
        + np.float32(c)
    )
    pos = sd >= 0
    a_pos = int(np.count_nonzero(pos & (owner0 == _A)))
    a_neg = int(np.count_nonzero(~pos & (owner0 == _A)))
    a_side = pos if a_pos >= a_neg else ~pos
    out = np.where(a_side, _A, _B).astype(np.uint8)
    out[~tissue] = 0
    if not ((out == _A).any() and (out == _B).any()):
        raise InputError("the plane does not pass through the joined heads")
    return out
