"""Accuracy and speed of ``twinsep.segment.core.segment_ct`` on phantoms.

Run: ``.venv/bin/python benchmarks/bench_tissues.py [--spacing 2] [--kinds total,partial]
[--baseline REV]``.

Prints per-tissue Dice against the phantom's ``tissues.nii.gz``, the number of vessel
components that join twin A and twin B (the shared sinus: found when the truth has one,
not invented when it has none), the share of the truth's shared vessel (near the
interface) that was found, the segmentation time (wall and CPU seconds) and the peak
resident memory of the process that segmented.

Each segmentation runs in a fresh process (so that the peak memory is its own). With
``--baseline REV`` the ``twinsep/tissues.py`` of git revision ``REV`` (e.g. ``HEAD``) is
run on the same phantom right before the working tree's, so that the two are measured
side by side in the same machine state.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

KINDS = {
    "total": {"fusion": "total"},
    "total-no-sinus": {"fusion": "total", "shared_sinus": False},
    "partial": {"fusion": "partial"},
    "angular": {"fusion": "total", "long_axis_angle": 120.0},
    "demo": {"fusion": "total", "axial_rotation": 60.0, "shared_sinus": True},
    "oblique-aniso": {"fusion": "total", "oblique": 30.0, "spacing": (0.9, 0.9, 1.6)},
    "oblique-aniso-coarse": {"fusion": "total", "oblique": 30.0, "spacing": (1.8, 1.8, 3.2)},
}

#: Child process: segment the CT in argv[1] with the module file argv[2] (or the installed
#: twinsep.segment.core when it is "-"), write the labels to argv[3], print timings as JSON.
_CHILD = """
import importlib.util, json, resource, sys, time
import numpy as np
import scipy.ndimage  # imported before the clock starts, for both codes
import SimpleITK
from twinsep.image import Volume
ct = Volume.read(sys.argv[1])
if sys.argv[2] == "-":
    from twinsep.segment import segment_ct
else:
    spec = importlib.util.spec_from_file_location("tissues_baseline", sys.argv[2])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["tissues_baseline"] = mod
    spec.loader.exec_module(mod)
    segment_ct = mod.segment_ct
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0, c0 = time.perf_counter(), time.process_time()
seg = segment_ct(ct).array
t1, c1 = time.perf_counter(), time.process_time()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
np.save(sys.argv[3], seg)
print(json.dumps({"wall_s": t1 - t0, "cpu_s": c1 - c0, "peak_mb": rss / 1024,
                  "before_mb": rss0 / 1024}))
"""


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


def baseline_module(rev: str, out: Path) -> Path:
    """``src/twinsep/tissues.py`` at git revision ``rev``, written to ``out``."""
    text = subprocess.run(["git", "show", f"{rev}:src/twinsep/tissues.py"], cwd=ROOT,
                          check=True, capture_output=True, text=True).stdout
    out.write_text(text, encoding="utf-8")
    return out


def run_child(ct_path: Path, module: str, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(ct_path), module, str(out)],
                          capture_output=True, text=True, env=dict(os.environ), check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from twinsep.phantom import PhantomSpec, make_phantom

    ap = argparse.ArgumentParser()
    ap.add_argument("--spacing", type=float, default=2.0,
                    help="isotropic spacing (mm) for the kinds without their own")
    ap.add_argument("--kinds", default="total,total-no-sinus,partial,angular,oblique-aniso",
                    help=f"comma-separated, from {', '.join(KINDS)}")
    ap.add_argument("--baseline", default=None,
                    help="git revision whose tissues.py is run beside the working tree's")
    args = ap.parse_args()
    print("| kind | spacing | voxels | code | wall s | CPU s | peak MB | scalp | bone | CSF "
          "| brain | vessel | bridges (truth) | shared found |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        codes = [("working tree", "-")]
        if args.baseline:
            base = baseline_module(args.baseline, tmp_dir / "tissues_baseline.py")
            codes.insert(0, (args.baseline, str(base)))
        for kind in args.kinds.split(","):
            opts = dict(KINDS[kind])
            spacing = tuple(opts.pop("spacing", (args.spacing,) * 3))
            ph = make_phantom(PhantomSpec(spacing=spacing, **opts))
            ct_path = tmp_dir / "ct.nii"
            ph.ct.write(ct_path)
            truth = ph.tissues.array
            own = ph.owner.array
            shared = (truth == 5) & (own == 3)
            for name, module in codes:
                r = run_child(ct_path, module, tmp_dir / "seg.npy")
                seg = np.load(tmp_dir / "seg.npy")
                d = [dice(seg == c, truth == c) for c in range(1, 6)]
                found = float(((seg == 5) & shared).sum() / max(int(shared.sum()), 1))
                sp_txt = "x".join(f"{v:g}" for v in spacing)
                print(f"| {kind} | {sp_txt} | {seg.size / 1e6:.1f} M | {name} | "
                      f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_mb']:.0f} | "
                      + " | ".join(f"{v:.3f}" for v in d)
                      + f" | {vessel_bridges(seg == 5, own)} ({vessel_bridges(truth == 5, own)})"
                      f" | {found:.2f} |", flush=True)


if __name__ == "__main__":
    main()
