"""The phantom table of docs/reconstruction.md: defects, implant and closure per twin.

Run: ``python scripts/reconstruction_table.py`` (about 40 s). Percentages: scalp and bone
defect against truth.json ``junction_area_cm2``, bone opening against
``junction_skull_area_cm2``.
"""

from __future__ import annotations

from pathlib import Path

from twinsep.phantom.build import make_phantom
from twinsep.phantom.spec import PhantomSpec
from twinsep.simulate.core import simulate_arrays
from twinsep.simulate.expanders import load_catalog

CATALOG = Path(__file__).resolve().parents[1] / "examples" / "expanders.yaml"
DEMO = {"fusion": "total", "axial_rotation": 60.0, "shared_sinus": True, "seed": 0}
ROWS = [("total", 3), ("total", 2), ("total", 1), ("partial", 3), ("partial", 2),
        ("partial", 1), ("demo (type III)", 1)]


def _pair(twins: dict, key: str, ref: float) -> str:
    vals = " / ".join(f"{twins[n][key]:.1f}" for n in "AB")
    pcts = ", ".join(f"{100 * (twins[n][key] / ref - 1):+.0f}" for n in "AB")
    return f"{vals} ({pcts} %)"


def row(kind: str, spacing: float) -> str:
    """One markdown table row for a phantom kind at ``spacing`` mm."""
    spec = DEMO if kind.startswith("demo") else {"fusion": kind}
    ph = make_phantom(PhantomSpec(spacing=(spacing,) * 3, **spec))
    j, sk = ph.truth["junction_area_cm2"], ph.truth["junction_skull_area_cm2"]
    sec = simulate_arrays(ph.tissues, ph.owner, products=load_catalog(CATALOG))
    tw, cr = sec["twins"], sec["cranium"]["twins"]
    imp = ", ".join(f"{cr[n]['implant']['area_cm2']:.1f} / {cr[n]['implant']['volume_ml']:.1f}"
                    for n in "AB")
    ok = all(cr[n]["closure"]["closed"] and cr[n]["brain_overlap_voxels"] == 0 for n in "AB")
    cells = [kind, f"{spacing:g}", "A / B", f"{j:.1f}", f"{sk:.1f}",
             _pair(tw, "scalp_defect_cm2", j), _pair(tw, "bone_opening_cm2", sk),
             _pair(tw, "bone_defect_cm2", j), imp, "yes" if ok else "NO"]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    for kind, spacing in ROWS:
        print(row(kind, spacing), flush=True)


if __name__ == "__main__":
    main()
