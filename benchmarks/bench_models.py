"""Mesh sizes and build times of ``twinsep models`` on the total phantom.

Run: ``.venv/bin/python benchmarks/bench_models.py [--spacing 2] [--mc-spacing-mm 1]``.
Prints, per layer, the triangles extracted and kept, the smoothing's volume change and
whether the mesh is watertight; then the time of each step (label map, surfaces, doll,
writing GLB/STL/3MF/seg.nrrd) and the file sizes. DICOM-SEG is not timed (needs --dicom).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    import numpy as np

    from twinsep.casefolder import Case
    from twinsep.models.build import build_models, write_models
    from twinsep.models.surfaces import SurfaceSettings
    from twinsep.phantom import PhantomSpec, make_phantom

    ap = argparse.ArgumentParser()
    ap.add_argument("--spacing", type=float, default=2.0)
    ap.add_argument("--mc-spacing-mm", type=float, default=1.0)
    ap.add_argument("--max-faces", type=int, default=1_200_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    ph = make_phantom(PhantomSpec(fusion="total", spacing=(args.spacing,) * 3))
    t_ph = time.perf_counter() - t0
    owner = ph.owner.with_array(np.asarray(ph.owner.array, np.uint8))
    settings = SurfaceSettings(mc_spacing_mm=args.mc_spacing_mm,
                               max_faces_total=args.max_faces)
    marks: dict[str, float] = {}

    def progress(description: str, done: int, total: int) -> None:
        marks.setdefault(f"{description} start", time.perf_counter())
        if done >= total:
            marks[f"{description} end"] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        case = Case(Path(tmp) / "case")
        case.labels.mkdir(parents=True)
        ph.tissues.write(case.tissues)
        owner.write(case.twins)
        t1 = time.perf_counter()
        ms = build_models(ph.tissues, owner, settings=settings, progress=progress)
        t2 = time.perf_counter()
        section = write_models(case, ms)
        t3 = time.perf_counter()
        sizes = {p.name: p.stat().st_size for p in case.models.rglob("*") if p.is_file()}
    print(f"phantom {args.spacing} mm, {ph.tissues.array.size / 1e6:.1f} M voxels "
          f"(built in {t_ph:.1f} s); marching cubes grid <= {args.mc_spacing_mm} mm")
    print(f"{'layer':<18}{'extracted':>10}{'kept':>9}{'smooth dV %':>12}  watertight")
    for ly in section["layers"]:
        print(f"{ly['name']:<18}{ly['triangles_extracted'] or 0:>10}{ly['triangles']:>9}"
              f"{ly['smoothing_volume_change_pct'] or 0:>12.2f}  {ly['watertight']}")
    for p in section["doll_print"]["parts"]:
        print(f"doll {p['twin']:<13}{'':>10}{p['triangles']:>9}{'':>12}  {p['watertight']}"
              f"  thin {p['thin_volume_ml']} ml")
    surf = marks.get("surface meshes end", t2) - marks.get("surface meshes start", t1)
    doll = marks.get("doll end", t2) - marks.get("doll start", t2)
    print(f"VR model triangles: {section['triangles_total']}")
    print(f"time: label map + shared vessels {marks.get('surface meshes start', t1) - t1:.1f} s,"
          f" surfaces {surf:.1f} s, doll {doll:.1f} s, writing {t3 - t2:.1f} s, "
          f"total {t3 - t1:.1f} s")
    print(f"files: model.glb {sizes.get('model.glb', 0) / 1e6:.1f} MB, doll.3mf "
          f"{sizes.get('doll.3mf', 0) / 1e6:.1f} MB, seg.nrrd "
          f"{sizes.get('segmentation.seg.nrrd', 0) / 1e6:.2f} MB, STL total "
          f"{sum(v for k, v in sizes.items() if k.endswith('.stl')) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
