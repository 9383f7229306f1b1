"""Staging: divide the crossing vessels over several operations, smallest first.

Following the staged separation of Goodrich and Staffenberg (the induction of venous
collaterals by staged separation, Montefiore 2004) and the GOSH practice of giving one twin
the large shared vein, the vessels that cross the cut are divided in increasing order of
cross-section, so that the smaller channels close first and collaterals can develop
before the largest (the shared sinus) is divided, last, in favour of the twin that keeps
its larger part. Either the number of stages is given, or it follows from a cap on the
share of the total venous cross-section divided in one stage (default 50%).
"""

from __future__ import annotations

import math


def _partition(sizes: list[float], n: int) -> list[int]:
    """Split sorted ``sizes`` into ``n`` contiguous non-empty groups minimising the largest
    group sum; returns the group sizes (dynamic programming, ties to earlier cuts)."""
    m = len(sizes)
    pre = [0.0]
    for s in sizes:
        pre.append(pre[-1] + s)
    inf = math.inf
    best = [[inf] * (m + 1) for _ in range(n + 1)]
    cut = [[0] * (m + 1) for _ in range(n + 1)]
    best[0][0] = 0.0
    for g in range(1, n + 1):
        for e in range(g, m + 1):
            for b in range(g - 1, e):
                v = max(best[g - 1][b], pre[e] - pre[b])
                if v < best[g][e] - 1e-12:
                    best[g][e] = v
                    cut[g][e] = b
    groups = []
    e = m
    for g in range(n, 0, -1):
        b = cut[g][e]
        groups.append(e - b)
        e = b
    return groups[::-1]


def plan_stages(
    crossings: list[dict], stages: int | None = None, max_share: float = 0.5
) -> dict:
    """Order the division of the crossing vessels into operations.

    Parameters
    ----------
    crossings : list of dict
        Crossing vessels (``id``, ``cross_section_mm2``, ``kept_by``, ...).
    stages : int, optional
        Number of operations that divide vessels; automatic when None.
    max_share : float
        Automatic mode: the largest share (0-1] of the total crossing cross-section
        divided in one stage (a single vessel above it gets a stage of its own).

    Returns
    -------
    dict
        ``mode``, ``max_share_per_stage``, ``total_cross_section_mm2`` and ``stages``: one
        entry per operation with the vessels divided, the share, what stays shared, and
        the last entry the final separation of the remaining tissues.
    """
    if stages is not None and stages < 1:
        raise ValueError("stages must be >= 1")
    if not 0 < max_share <= 1:
        raise ValueError("max_share must be in (0, 1]")
    order = sorted(crossings, key=lambda c: (c["cross_section_mm2"], c["id"]))
    sizes = [float(c["cross_section_mm2"]) for c in order]
    total = sum(sizes)
    groups: list[list[dict]] = []
    if order:
        if stages is not None:
            n = min(stages, len(order))
            counts = _partition(sizes, n)
        else:
            counts, run, cnt = [], 0.0, 0
            for s in sizes:
                if cnt and run + s > max_share * total + 1e-9:
                    counts.append(cnt)
                    run, cnt = 0.0, 0
                run += s
                cnt += 1
            counts.append(cnt)
        i = 0
        for c in counts:
            groups.append(order[i:i + c])
            i += c
    out = []
    remaining = list(order)
    for k, grp in enumerate(groups, start=1):
        ids = {c["id"] for c in grp}
        remaining = [c for c in remaining if c["id"] not in ids]
        divided = sum(c["cross_section_mm2"] for c in grp)
        last = k == len(groups)
        out.append({
            "stage": k,
            "divide": [
                {"id": c["id"], "cross_section_mm2": c["cross_section_mm2"],
                 "kept_by": c["kept_by"]} for c in grp
            ],
            "divided_cross_section_mm2": divided,
            "share_of_crossing_cross_section": divided / total if total > 0 else 0.0,
            "remaining_shared": [c["id"] for c in remaining],
            "remaining_cross_section_mm2": sum(c["cross_section_mm2"] for c in remaining),
            "final_separation": last,
            "note": (
                "divide the listed vessels, then complete the separation of dura, bone "
                "and scalp" if last else
                "divide the listed vessels; wait for venous collaterals before the next stage"
            ),
        })
    if not out:
        out.append({
            "stage": 1, "divide": [], "divided_cross_section_mm2": 0.0,
            "share_of_crossing_cross_section": 0.0, "remaining_shared": [],
            "remaining_cross_section_mm2": 0.0, "final_separation": True,
            "note": "no vessel crosses the cut: one-stage separation",
        })
    return {
        "mode": "fixed" if stages is not None else "cap",
        "requested_stages": stages,
        "max_share_per_stage": max_share,
        "total_cross_section_mm2": total,
        "stages": out,
    }
