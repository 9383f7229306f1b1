"""The case layer of ``twinsep compare``: reads two case folders, writes
``OUT/comparison.json``, ``OUT/growth.png``, ``OUT/growth.md`` and the later case's
plan.json ``growth``."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from pydantic import Field

from twinsep.casefolder import (
    Case,
    load_plan,
    read_json,
    update_plan,
    write_json,
    write_text_atomic,
)
from twinsep.compare.core import (
    CaseData,
    Comparison,
    brain_centroids,
    compare_data,
    growth_figure,
    report_markdown,
)
from twinsep.errors import InputError
from twinsep.identify.shared import measure_shared
from twinsep.image import Volume
from twinsep.progress import Progress
from twinsep.settings import Settings
from twinsep.stage import Stage, StageResult

logger = logging.getLogger(__name__)


class CompareSettings(Settings):
    """Options of ``twinsep compare`` (run on the later case)."""

    earlier: Path | None = Field(None, description="Case folder of the earlier scan.")
    out: Path | None = Field(None, description="Folder for comparison.json, growth.png/.md.")
    months: float | None = Field(None, gt=0, description="Months between the scans "
                                 "(overrides the ages at the scans).")
    force: bool = Field(False, description="Compare even when the cases do not look like "
                        "the same twins.")
    write_plan: bool = Field(True, description="Write `growth` into the later case.")


def compare(earlier_root: Path | str, later_root: Path | str, *, months: float | None = None,
            force: bool = False, progress: Progress | None = None) -> Comparison:
    """:func:`~twinsep.compare.core.compare_data` on two case folders that have run
    ``ingest``, ``segment`` and ``identify``."""
    return compare_data(load_case(earlier_root), load_case(later_root), months=months,
                        force=force, progress=progress)


def load_case(root: Path | str) -> CaseData:
    """Read a case folder that has run ``segment`` and ``identify``.

    The measures come from plan.json ``shared`` when present, else they are computed with
    :func:`twinsep.identify.shared.measure_shared` from the case's labels.
    """
    case = Case(Path(root))
    case.require(case.scan, hint="run `twinsep ingest` first")
    case.require(case.tissues, hint="run `twinsep segment` first")
    case.require(case.twins, hint="run `twinsep identify` first")
    ct = Volume.read(case.scan)
    tissues = Volume.read(case.tissues)
    owner = Volume.read(case.twins)
    if not tissues.same_grid(owner, tol_mm=1e-2):
        raise InputError(f"{case.root}: labels/tissues and labels/twins are not on one grid")
    plan = load_plan(case)
    info = read_json(case.case_json) if case.case_json.exists() else {}
    mask = None
    if isinstance(plan.get("shared"), dict) and "junction_area_cm2" in plan["shared"]:
        shared, source = plan["shared"], "plan.json shared"
    else:
        sa = measure_shared(tissues, owner, image=ct if ct.same_grid(tissues, tol_mm=1e-2)
                            else None)
        shared, source, mask = sa.to_plan(), "measure_shared (labels)", sa.shared_vessel_mask
    data = CaseData(case, ct, tissues, owner, plan, info, shared, source,
                    brain_centroids(tissues, owner), mask)
    return data


# --- case-folder entry point -----------------------------------------------------------------
def compare_cases(earlier: Path | str, later: Path | str, out: Path | str, *,
                  months: float | None = None, force: bool = False, write_plan: bool = True,
                  progress: Progress | None = None) -> Comparison:
    """Compare two cases and write ``OUT/comparison.json``, ``OUT/growth.png``,
    ``OUT/growth.md`` and the later case's plan.json ``growth`` (and ``figures.growth``).

    See :func:`compare` for the parameters; ``write_plan=False`` leaves the later case
    untouched.
    """
    cmp = compare(earlier, later, months=months, force=force, progress=progress)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "comparison.json", cmp.growth)
    growth_figure(cmp, out / "growth.png")
    write_text_atomic(out / "growth.md", report_markdown(cmp.growth))
    if write_plan:
        case = cmp.later.case
        case.figures.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "growth.png", case.figures / "growth.png")
        figures = dict(load_plan(case).get("figures") or {})
        figures["growth"] = "figures/growth.png"
        update_plan(case, growth=cmp.growth, figures=figures)
    return cmp


def _run(case: Case, settings: CompareSettings, progress: Progress) -> StageResult:
    if settings.earlier is None or settings.out is None:
        raise InputError("compare needs the earlier case and --out")
    cmp = compare_cases(settings.earlier, case.root, settings.out, months=settings.months,
                        force=settings.force, write_plan=settings.write_plan,
                        progress=progress)
    g = cmp.growth
    for warning in g["warnings"]:
        logger.warning("%s", warning)
    return StageResult(sections={"growth": g} if settings.write_plan else {},
                       notes=tuple(g["notes"]) + tuple(g["warnings"]), data=cmp)


STAGE = Stage(
    name="compare",
    title="growth between two scans",
    settings=CompareSettings,
    inputs=("scan.nii.gz", "labels/tissues.nii.gz", "labels/twins.nii.gz", "plan.json"),
    outputs=("plan:growth",),
    run=_run,
    hint="run ingest, segment and identify on both cases (docs/growth.md)",
)

__all__ = ["STAGE", "CompareSettings", "compare", "compare_cases", "load_case"]
