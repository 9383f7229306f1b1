"""Benchmark of the separation cut (``twinsep.separate``) on phantoms.

Runs each method in a fresh child process and reports wall time, CPU time (``cpu_s``, the
figure to compare on a shared, loaded machine: the work is single-threaded) and peak
resident memory (``ru_maxrss`` of the child, so the phantom arrays are included) together
with the voxel counts; ratios compare the methods on the same input in the same run::

    .venv/bin/python benchmarks/bench_separation.py --spacing 1.0 0.5

Methods:

* ``pyramid-bk``      the shipped cut on the whole volume: narrow band, coarse to fine,
                      PyMaxflow BK (``separate`` runs it on the work box only);
* ``pyramid-dinic``   the same bands through scipy's Dinic (integer capacities);
* ``single-bk``       no pyramid: one BK cut at full resolution on the whole corridor
                      band (every tissue voxel within ``corridor_mm`` of the interface);
* ``separate``        the whole ``separate()`` step (cost map, cuts (a)-(c), measures),
                      with the distance of each crossing to the nearest truth crossing.

``--baseline-src DIR`` runs every method a second time with another ``twinsep`` source
tree first on the child's path (e.g. ``git archive HEAD src | tar -x -C /tmp/base`` then
``--baseline-src /tmp/base/src``), so a change is compared with what it replaces in the
same run (``*_ratio_vs_baseline``).

Phantoms are cached as pickles under ``--cache`` (default ``/tmp/twinsep-bench``); the
cache is not refreshed when the phantom code changes, so point ``--cache`` at a new folder
then.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import pickle
import resource
import sys
import time
from pathlib import Path


def _phantom(spacing: float, cache: Path):
    path = cache / f"phantom-{spacing:g}mm.pkl"
    if path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    from twinsep.phantom import PhantomSpec, make_phantom

    ph = make_phantom(PhantomSpec(spacing=(spacing, spacing, spacing)))
    cache.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump((ph.tissues, ph.owner, ph.truth), fh, protocol=5)
    return ph.tissues, ph.owner, ph.truth


def _child(method: str, spacing: float, cache: str, q, src: str | None = None) -> None:
    if src:
        sys.path.insert(0, src)
    import numpy as np

    from twinsep.separate import load_risk, pyramid_cut, separate, solve_band
    from twinsep.separate.graphcut import interface_mask, near_voxels
    from twinsep.separate.risk import vessel_cross_section

    tissues, owner, truth = _phantom(spacing, Path(cache))
    tis, own0 = tissues.array, owner.array
    sk = tissues.spacing_kji
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    c0 = time.process_time()
    t0 = time.perf_counter()
    info: dict = {}
    if method == "separate":
        sep = separate(tissues, owner)
        info["cut_area_total_cm2"] = sep.summary["cut_area_total_cm2"]
        info["risk"] = sep.summary["total_risk"]
        info["timings_s"] = sep.timings_s
        tc = truth["shared_vessel"]["crossings"]
        info["crossings"] = [
            {"distance_to_truth_mm": min(
                (float(np.linalg.norm(np.subtract(c["world_mm"], t["world_mm"]))) for t in tc),
                default=None),
             "cross_section_mm2": c["cross_section_mm2"]}
            for c in sep.summary["crossing_vessels"]]
        info["truth_cross_sections_mm2"] = [t["cross_section_mm2"] for t in tc]
    else:
        risk = load_risk()
        cost = risk.voxel_cost(tis, vessel_cross_section(tis, sk))
        t1 = time.perf_counter()
        info["prepare_s"] = t1 - t0
        if method.startswith("pyramid"):
            res = pyramid_cut(tis, own0, cost, sk, solver=method.split("-")[1])
            info["levels"] = [
                {"spacing_mm": lv.spacing_mm, "band_voxels": lv.band_voxels,
                 "edges": lv.edges, "seconds": round(lv.seconds, 3)} for lv in res.levels
            ]
            out = res.owner
        else:  # single-bk
            o = np.where((own0 == 1) | (own0 == 2), own0, 0).astype(np.uint8)
            from twinsep.separate.graphcut import fill_unowned

            o = fill_unowned(o, tis > 0)
            band = near_voxels(interface_mask(o), 10.0, sk) & (tis > 0)
            out, _flow, ne = solve_band(cost, tis > 0, o, band, sk)
            info["levels"] = [{"band_voxels": int(band.sum()), "edges": ne}]
        from twinsep.separate.metrics import face_measures

        info["risk"] = face_measures(out, tis, cost, sk)["risk"]
        info["cut_s"] = time.perf_counter() - t1
    info["seconds"] = time.perf_counter() - t0
    info["cpu_s"] = time.process_time() - c0  # robust on a shared machine
    info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    info["rss_before_mb"] = rss0 / 1024
    info["voxels"] = int(tis.size)
    info["tissue_voxels"] = int(np.count_nonzero(tis))
    info["shape_kji"] = list(tis.shape)
    q.put(info)


def run(method: str, spacing: float, cache: str, timeout: float,
        src: str | None = None) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(method, spacing, cache, q, src))
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.terminate()
        p.join()
        return {"method": method, "spacing_mm": spacing, "timeout_s": timeout}
    if q.empty():
        return {"method": method, "spacing_mm": spacing, "error": f"exit {p.exitcode}"}
    return {"method": method, "spacing_mm": spacing, **q.get()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spacing", type=float, nargs="+", default=[1.0, 0.5])
    ap.add_argument("--methods", nargs="+",
                    default=["pyramid-bk", "pyramid-dinic", "single-bk", "separate"])
    ap.add_argument("--cache", default="/tmp/twinsep-bench")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--baseline-src", default=None,
                    help="another twinsep source tree (the folder holding twinsep/) to "
                         "compare with, method by method, in the same run")
    args = ap.parse_args(argv)
    results = []
    for sp in args.spacing:
        _phantom(sp, Path(args.cache))  # build the cache outside the timed children
        base = None
        for m in args.methods:
            if args.baseline_src:
                b = run(m, sp, args.cache, args.timeout, args.baseline_src)
                b["source"] = args.baseline_src
                results.append(b)
                print(json.dumps(b), flush=True)
            r = run(m, sp, args.cache, args.timeout)
            if args.baseline_src and "seconds" in r and "seconds" in b:
                r["time_ratio_vs_baseline"] = r["seconds"] / b["seconds"]
                r["cpu_ratio_vs_baseline"] = r["cpu_s"] / b["cpu_s"]
            if m == "pyramid-bk" and "seconds" in r:
                base = r
            if base is not None and "seconds" in r and r is not base:
                r["time_ratio_vs_pyramid_bk"] = r["seconds"] / base["seconds"]
                r["cut_time_ratio_vs_pyramid_bk"] = r.get("cut_s", float("nan")) / base["cut_s"]
                r["risk_ratio_vs_pyramid_bk"] = r["risk"] / base["risk"]
            results.append(r)
            print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
