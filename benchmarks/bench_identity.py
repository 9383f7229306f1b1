"""Twin identity: compare brain split methods on the phantom set.

Two modes:

* ``python benchmarks/bench_identity.py --table [--spacing 1] [--methods a,b]
  [--out docs/identity_table.md]`` builds every phantom kind, runs each method from the
  true tissue map (``--tissues``) and from the CT alone (``twinsep.segment.core.segment_ct``),
  and prints a Markdown table of Dice (overall and within 25 mm of the interface, over
  unambiguous voxels) and time. This is the table in ``docs/methods.md``.
* ``pytest benchmarks/bench_identity.py --benchmark-enable`` times the default method on
  one 2 mm phantom with pytest-benchmark.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

#: Every kind of phantom the generator makes, plus the ones that defeat easy answers.
PHANTOM_SET: dict[str, dict] = {
    "type I total": {"fusion": "total"},
    "type II total": {"fusion": "total", "axial_rotation": 180.0},
    "type III total": {"fusion": "total", "axial_rotation": 90.0},
    "partial": {"fusion": "partial"},
    "angular 100 deg": {"fusion": "total", "long_axis_angle": 100.0},
    "unequal 0.80/0.58": {"fusion": "total", "scale_a": 0.80, "scale_b": 0.58},
    "wide wavy brain contact": {"fusion": "total", "fusion_depth": 40.0, "undulation": 5.0},
    "off-centre junction": {"fusion": "total", "junction_offset": 25.0},
    "oblique anisotropic": {"fusion": "total", "oblique": 25.0, "spacing_factor": (1.0, 1.25, 1.6)},
    "seed 7": {"fusion": "partial", "axial_rotation": 45.0, "seed": 7},
}

NEAR_MM = 25.0


def make(name: str, spacing: float):
    """Build one phantom of the set at ``spacing`` mm (times a per-axis factor)."""
    from twinsep.phantom import PhantomSpec, make_phantom

    kw = dict(PHANTOM_SET[name])
    factor = kw.pop("spacing_factor", (1.0, 1.0, 1.0))
    sp = tuple(float(spacing * f) for f in factor)
    return make_phantom(PhantomSpec(spacing=sp, **kw))


def score(owner: np.ndarray, phantom) -> tuple[float, float]:
    """Worst-twin Dice overall and within NEAR_MM of the interface."""
    from twinsep.identify.identity import dice_scores

    truth = phantom.owner.array
    d_all = dice_scores(owner, truth)
    d_near = dice_scores(owner, truth, phantom.owner.spacing_kji, NEAR_MM)
    return min(d_all.values()), min(d_near.values())


def run_table(spacing: float, methods: list[str], names: list[str]) -> list[dict]:
    """Rows of results: one per phantom, source and method."""
    from twinsep.identify.identity import identify
    from twinsep.segment import segment_ct

    rows = []
    for name in names:
        ph = make(name, spacing)
        sources = {"tissues": ph.tissues}
        t0 = time.perf_counter()
        sources["CT"] = segment_ct(ph.ct)
        seg_s = time.perf_counter() - t0
        for src, tissues in sources.items():
            for m in methods:
                try:
                    r = identify(tissues, method=m)
                    d_all, d_near = score(r.owner.array, ph)
                    row = {
                        "phantom": name,
                        "source": src,
                        "method": m,
                        "dice": d_all,
                        "dice_near": d_near,
                        "seconds": r.seconds,
                        "error": "",
                    }
                except Exception as exc:
                    row = {
                        "phantom": name,
                        "source": src,
                        "method": m,
                        "dice": float("nan"),
                        "dice_near": float("nan"),
                        "seconds": float("nan"),
                        "error": str(exc)[:60],
                    }
                rows.append(row)
                print(
                    f"{name:26s} {src:8s} {m:14s} dice {row['dice']:.4f} "
                    f"near {row['dice_near']:.4f} {row['seconds']:.2f} s {row['error']}",
                    file=sys.stderr,
                    flush=True,
                )
        print(f"  (segment_ct {seg_s:.1f} s)", file=sys.stderr)
    return rows


def markdown(rows: list[dict], spacing: float) -> str:
    """Summary (per method and source: worst and mean Dice, mean time) and detail tables."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = [
        f"Phantoms at {spacing:g} mm ({len({r['phantom'] for r in rows})} kinds); Dice of the "
        f"worse twin over unambiguous voxels, overall and within {NEAR_MM:g} mm of the interface.",
        "",
        "| method | source | min Dice | mean Dice | min Dice near | mean Dice near "
        "| mean time (s) | failures |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        for src in ("tissues", "CT"):
            sel = [r for r in rows if r["method"] == m and r["source"] == src]
            ok = [r for r in sel if not r["error"]]
            if not sel:
                continue

            def f(key: str, fn, ok=ok) -> float:
                return float(fn([r[key] for r in ok])) if ok else float("nan")

            lines.append(
                f"| {m} | {src} | {f('dice', min):.4f} | {f('dice', np.mean):.4f} | "
                f"{f('dice_near', min):.4f} | {f('dice_near', np.mean):.4f} | "
                f"{f('seconds', np.mean):.2f} | {len(sel) - len(ok)} |"
            )
    lines += [
        "",
        "| phantom | source | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for name in dict.fromkeys(r["phantom"] for r in rows):
        for src in ("tissues", "CT"):
            cells = []
            for m in methods:
                r = next(
                    (
                        r
                        for r in rows
                        if r["phantom"] == name and r["source"] == src and r["method"] == m
                    ),
                    None,
                )
                if r is None:
                    cells.append("")
                elif r["error"]:
                    cells.append("error")
                else:
                    cells.append(f"{r['dice']:.3f} / {r['dice_near']:.3f} / {r['seconds']:.1f} s")
            lines.append(f"| {name} | {src} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Cells: Dice overall / Dice within 25 mm of the interface / time.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from twinsep.identify.identity import METHODS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", action="store_true", help="run the comparison and print the table")
    p.add_argument("--spacing", type=float, default=1.0, help="phantom voxel size (mm)")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--phantoms", default=",".join(PHANTOM_SET), help="comma-separated names")
    p.add_argument("--out", type=Path, default=None, help="also write the table here")
    a = p.parse_args(argv)
    if not a.table:
        p.print_help()
        return 0
    rows = run_table(a.spacing, a.methods.split(","), a.phantoms.split(","))
    text = markdown(rows, a.spacing)
    print(text)
    if a.out:
        a.out.write_text(text)
    return 0


# --- pytest-benchmark ---------------------------------------------------------------------
def test_bench_identity_default(benchmark) -> None:
    from twinsep.identify.identity import identify

    ph = make("type I total", 2.0)
    result = benchmark.pedantic(identify, args=(ph.tissues,), rounds=1, iterations=1)
    assert min(score(result.owner.array, ph)) >= 0.97


if __name__ == "__main__":
    raise SystemExit(main())
