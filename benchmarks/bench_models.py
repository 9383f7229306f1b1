"""Mesh sizes and build times of ``twinsep models`` on the total phantom.

Run: ``.venv/bin/python benchmarks/bench_models.py [--spacing 2] [--mc-spacing-mm 1]
[--cache DIR] [--profile FILE]``.

The case is prepared as ``tests/models/test_models.py`` does: the default total phantom, its
ambiguous owner voxels given to the nearest twin. Prints, per layer, the triangles
extracted and kept, the smoothing's volume change, volume, area and whether the mesh is
watertight; then the wall-clock and CPU time of each step (label map, surfaces, doll,
writing GLB/STL/3MF/seg.nrrd) and the file sizes. DICOM-SEG is not timed (needs --dicom).
``--cache DIR`` keeps the phantom's label maps there (the 0.5 mm phantom takes minutes).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def _phantom(spacing: float, cache: Path | None):
    """(tissues, owner) of the default total phantom, owner without code 3."""
    import numpy as np
    from scipy import ndimage as ndi

    from twinsep.image import Volume
    from twinsep.phantom import PhantomSpec, make_phantom

    paths = None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        paths = (cache / f"tissues_{spacing:g}mm.nii.gz", cache / f"twins_{spacing:g}mm.nii.gz")
        if all(p.exists() for p in paths):
            return Volume.read(paths[0]), Volume.read(paths[1])
    ph = make_phantom(PhantomSpec(fusion="total", spacing=(spacing,) * 3))
    a = np.asarray(ph.owner.array).copy()
    amb = a == 3
    if amb.any():
        idx = ndi.distance_transform_edt((a == 0) | amb, return_distances=False,
                                         return_indices=True)
        a[amb] = a[tuple(i[amb] for i in idx)]
    owner = ph.owner.with_array(a.astype(np.uint8))
    if paths is not None:
        ph.tissues.write(paths[0])
        owner.write(paths[1])
    return ph.tissues, owner


def main() -> None:
    import numpy as np

    from twinsep.casefolder import Case
    from twinsep.models import build_models, write_models
    from twinsep.models.surfaces import SurfaceSettings

    ap = argparse.ArgumentParser()
    ap.add_argument("--spacing", type=float, default=2.0)
    ap.add_argument("--mc-spacing-mm", type=float, default=1.0)
    ap.add_argument("--max-faces", type=int, default=1_200_000)
    ap.add_argument("--cache", type=Path, default=None, help="folder for the phantom maps")
    ap.add_argument("--profile", type=Path, default=None, help="write cProfile stats (CPU)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    tissues, owner = _phantom(args.spacing, args.cache)
    t_ph = time.perf_counter() - t0
    owner = owner.with_array(np.asarray(owner.array, np.uint8))
    settings = SurfaceSettings(mc_spacing_mm=args.mc_spacing_mm,
                               max_faces_total=args.max_faces)
    marks: dict[str, tuple[float, float]] = {}

    def now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def progress(description: str, done: int, total: int) -> None:
        marks.setdefault(f"{description} start", now())
        if done >= total:
            marks[f"{description} end"] = now()

    prof = None
    if args.profile is not None:
        import cProfile

        prof = cProfile.Profile(time.process_time)
    with tempfile.TemporaryDirectory() as tmp:
        case = Case(Path(tmp) / "case")
        case.labels.mkdir(parents=True)
        tissues.write(case.tissues)
        owner.write(case.twins)
        if prof is not None:
            prof.enable()
        t1 = now()
        ms = build_models(tissues, owner, settings=settings, progress=progress)
        t2 = now()
        section = write_models(case, ms)
        t3 = now()
        if prof is not None:
            prof.disable()
            prof.dump_stats(args.profile)
        sizes = {p.name: p.stat().st_size for p in case.models.rglob("*") if p.is_file()}
    print(f"phantom {args.spacing} mm, {tissues.array.size / 1e6:.1f} M voxels "
          f"(ready in {t_ph:.1f} s); marching cubes grid <= {args.mc_spacing_mm} mm")
    print(f"{'layer':<18}{'extracted':>10}{'kept':>9}{'smooth dV %':>12}{'ml':>9}"
          f"{'cm2':>9}  watertight")
    for ly in section["layers"]:
        print(f"{ly['name']:<18}{ly['triangles_extracted'] or 0:>10}{ly['triangles']:>9}"
              f"{ly['smoothing_volume_change_pct'] or 0:>12.2f}{ly['volume_ml'] or 0:>9.1f}"
              f"{ly['area_cm2']:>9.1f}  {ly['watertight']}")
    for p in section["doll_print"]["parts"]:
        print(f"doll {p['twin']:<13}{'':>10}{p['triangles']:>9}{'':>12}{p['volume_ml']:>9.1f}"
              f"{'':>9}  {p['watertight']}  thin {p['thin_volume_ml']} ml")

    def span(a: str, b: str, default_a, default_b) -> str:
        x, y = marks.get(a, default_a), marks.get(b, default_b)
        return f"{y[0] - x[0]:.1f} s ({y[1] - x[1]:.1f} s CPU)"

    print(f"VR model triangles: {section['triangles_total']}")
    print(f"time: label map + shared vessels {span('', 'surface meshes start', t1, t1)}, "
          f"surfaces {span('surface meshes start', 'surface meshes end', t1, t2)}, "
          f"doll {span('doll start', 'doll end', t2, t2)}, writing {span('', '', t2, t3)}, "
          f"total {span('', '', t1, t3)}")
    print(f"files: model.glb {sizes.get('model.glb', 0) / 1e6:.1f} MB, doll.3mf "
          f"{sizes.get('doll.3mf', 0) / 1e6:.1f} MB, seg.nrrd "
          f"{sizes.get('segmentation.seg.nrrd', 0) / 1e6:.2f} MB, STL total "
          f"{sum(v for k, v in sizes.items() if k.endswith('.stl')) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
