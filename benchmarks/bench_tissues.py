"""Accuracy and speed of ``twinsep.tissues.segment_ct`` on phantoms.

Run: ``.venv/bin/python benchmarks/bench_tissues.py [--spacing 2] [--kinds total,partial]``.
Prints per-tissue Dice against the phantom's ``tissues.nii.gz``, the number of vessel
components that join twin A and twin B (the shared sinus: found when the truth has one,
not invented when it has none) and the segmentation time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

KINDS = {
    "total": {"fusion": "total"},
    "total-no-sinus": {"fusion": "total", "shared_sinus": False},
    "partial": {"fusion": "partial"},
    "angular": {"fusion": "total", "long_axis_angle": 120.0},
    "oblique-aniso": {"fusion": "total", "oblique": 30.0, "spacing": (0.9, 0.9, 1.6)},
}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


def vessel_bridges(vessel: np.ndarray, owner: np.ndarray) -> int:
    """Number of vessel components holding both twin A and twin B voxels."""
    from scipy import ndimage as ndi

    lab, n = ndi.label(vessel, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return 0
    in_a = np.zeros(n + 1, bool)
    in_b = np.zeros(n + 1, bool)
    in_a[np.unique(lab[owner == 1])] = True
    in_b[np.unique(lab[owner == 2])] = True
    in_a[0] = in_b[0] = False
    return int((in_a & in_b).sum())


def main() -> None:
    from twinsep.phantom import PhantomSpec, make_phantom
    from twinsep.tissues import segment_ct

    ap = argparse.ArgumentParser()
    ap.add_argument("--spacing", type=float, default=2.0)
    ap.add_argument("--kinds", default=",".join(KINDS))
    args = ap.parse_args()
    print("kind            spacing         voxels    t_seg  scalp  bone   csf    brain  vessel"
          "  bridges(truth)")
    for kind in args.kinds.split(","):
        opts = dict(KINDS[kind])
        spacing = opts.pop("spacing", (args.spacing,) * 3)
        ph = make_phantom(PhantomSpec(spacing=spacing, **opts))
        t0 = time.perf_counter()
        seg = segment_ct(ph.ct).array
        t = time.perf_counter() - t0
        truth = ph.tissues.array
        d = [dice(seg == c, truth == c) for c in range(1, 6)]
        own = ph.owner.array
        print(f"{kind:15s} {spacing!s:15s} {seg.size:9d} {t:6.1f}s "
              + " ".join(f"{v:.3f}" for v in d)
              + f"  {vessel_bridges(seg == 5, own)}"
              f"({vessel_bridges(truth == 5, own)})")


if __name__ == "__main__":
    main()
