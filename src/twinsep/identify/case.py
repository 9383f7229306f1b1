"""The case layer of ``twinsep identify``: reads the tissue labels (and the scan for the
brain-contact test and the figure), writes ``labels/twins.nii.gz``, plan.json ``identity``,
``conjoined``, ``shared``, ``classification`` and ``figures/junction.png``."""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field

from twinsep.casefolder import Case, load_plan, update_plan, write_volume
from twinsep.errors import InputError
from twinsep.identify.classification import classify
from twinsep.identify.figures import junction_figure
from twinsep.identify.identity import METHODS, IdentityResult, check_method, identify
from twinsep.identify.plausibility import PlausibilityResult, PlausibleRanges, check_plausibility
from twinsep.identify.shared import measure_shared
from twinsep.image import Volume
from twinsep.progress import Progress, silent
from twinsep.settings import Settings, default
from twinsep.stage import Stage, StageResult

logger = logging.getLogger(__name__)

Point = tuple[float, float, float]

#: The brain split methods (docs/methods.md compares them).
Method = StrEnum("Method", {m.upper(): m for m in METHODS})


class IdentifySettings(Settings):
    """Options of ``twinsep identify`` (defaults: ``identify`` in defaults.yaml)."""

    seed_a_mm: Point | None = Field(default("identify.seed_a_mm"),
                                    description="A point (world mm) in twin A's brain.")
    seed_b_mm: Point | None = Field(default("identify.seed_b_mm"),
                                    description="A point (world mm) in twin B's brain.")
    method: Method = Field(Method(default("identify.method")), description="Brain split method.")
    landmarks: Path | None = Field(default("identify.landmarks"),
                                   description="JSON landmarks file for the classification.")
    plausibility: bool = Field(default("identify.plausibility"),
                               description="Refuse a scan that is not two children's heads.")
    plausible: PlausibleRanges = Field(default_factory=PlausibleRanges,
                                       description="Ranges of the plausibility checks.")

    def model_post_init(self, context: Any) -> None:
        if (self.seed_a_mm is None) != (self.seed_b_mm is None):
            raise InputError("give both --seed-a and --seed-b, or neither")


def read_landmarks(path: Path | None) -> dict | None:
    """``{"A": {"nasion": [x, y, z]}, "B": {...}}`` (world mm) from a JSON file."""
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON landmarks file ({exc})") from None
    if not isinstance(data, dict) or not set(data) <= {"A", "B"}:
        raise InputError(f'{path}: expected {{"A": {{"nasion": [x, y, z]}}, "B": {{...}}}}')
    for twin, marks in data.items():
        if not isinstance(marks, dict):
            raise InputError(f"{path}: landmarks of twin {twin} must be an object")
        for name, p in marks.items():
            ok = isinstance(p, list) and len(p) == 3 and all(isinstance(v, int | float) for v in p)
            if not ok:
                raise InputError(f"{path}: {twin}.{name} must be three numbers [x, y, z] in mm")
    return data


# --- case folder -----------------------------------------------------------------------------
def identify_case(
    case,
    *,
    seed_a: tuple[float, float, float] | None = None,
    seed_b: tuple[float, float, float] | None = None,
    landmarks: dict | None = None,
    method: str | None = None,
    plausibility: bool = True,
    ranges: PlausibleRanges | None = None,
    progress: Progress | None = None,
) -> IdentityResult:
    """Identify the twins of a case folder and write the results.

    Reads ``labels/tissues.nii.gz`` (and ``scan.nii.gz`` for the figure), writes
    ``labels/twins.nii.gz`` (uint8 on the scan's grid) and plan.json sections
    ``identity``, ``conjoined``, ``closest_distance_mm`` and, when conjoined, ``shared``,
    ``classification`` and ``figures``.

    Parameters
    ----------
    case : Case
        The case folder.
    seed_a, seed_b : (3,) float, optional
        Brain seeds in world mm.
    landmarks : dict, optional
        ``{"A": {"nasion": [x, y, z], ...}, "B": {...}}`` (world mm) for the classification.
    method : str, optional
        Brain split method.
    plausibility : bool
        Refuse (InputError) when a check of :func:`check_plausibility` fails; False
        records the checks and goes on.
    ranges : PlausibleRanges, optional
        The checks' ranges (the packaged defaults when omitted).
    progress : callable, optional
        ``progress(message, fraction)``.

    Returns
    -------
    IdentityResult

    Raises
    ------
    InputError
        Before anything is written, when the scan is not two children's heads (one line
        naming the failed checks and how to override them).
    """

    report = progress or silent
    case.require(case.tissues, hint="run `twinsep segment` first")
    method = check_method(method)
    report("reading tissues", 0.0)
    tissues = Volume.read(case.tissues)
    report("identifying the twins", 0.05)
    result = identify(tissues, seed_a_mm=seed_a, seed_b_mm=seed_b, method=method)
    ct = Volume.read(case.scan) if case.scan.exists() else None  # also for the figure
    same = ct is not None and ct.same_grid(tissues, tol_mm=1e-2)
    report("checking that these are two children's heads", 0.45)
    checks = plausible_heads(tissues, result, ct=ct if same else None, ranges=ranges,
                             refuse=plausibility)
    identity = {**result.to_plan(), "plausibility": checks.to_plan()}
    write_volume(result.owner, case.twins)
    if not result.conjoined:
        update_plan(
            case,
            identity=identity,
            conjoined=False,
            closest_distance_mm=round(float(result.closest_distance_mm or 0.0), 2),
        )
        return result
    # --- measurements by the other stages -------------------------------------------

    report("measuring shared anatomy", 0.5)
    shared = measure_shared(tissues, result.owner, image=ct if same else None)
    report("classifying the junction", 0.8)
    classification = classify(tissues, result.owner, shared, landmarks=landmarks)
    figures: dict[str, str] = {}
    report("drawing the junction figure", 0.9)
    fig_path = case.figures / "junction.png"
    case.figures.mkdir(parents=True, exist_ok=True)
    junction_figure(ct, tissues, result.owner, fig_path,
                    shared_vessel_mask=getattr(shared, "shared_vessel_mask", None))
    figures["junction"] = fig_path.relative_to(case.root).as_posix()
    old_figures = dict(load_plan(case).get("figures") or {})
    old_figures.update(figures)
    update_plan(
        case,
        identity=identity,
        conjoined=True,
        closest_distance_mm=None,
        shared=shared.to_plan(),
        classification=classification.to_plan(),
        figures=old_figures,
    )
    return result


def plausible_heads(
    tissues: Volume,
    result: IdentityResult,
    *,
    ct: Volume | None = None,
    ranges: PlausibleRanges | None = None,
    refuse: bool = True,
) -> PlausibilityResult:
    """The plausibility checks of identify's result, logged; InputError if one fails.

    Parameters
    ----------
    tissues : Volume
        Tissue codes.
    result : IdentityResult
        What :func:`~twinsep.identify.identity.identify` found.
    ct : Volume, optional
        The CT (HU) on the tissues' grid.
    ranges : PlausibleRanges, optional
        The ranges (packaged defaults when omitted).
    refuse : bool
        Raise on a failed check (else only log it).

    Returns
    -------
    PlausibilityResult
    """
    checks = check_plausibility(tissues, result.owner, ct=ct, conjoined=result.conjoined,
                                ranges=ranges)
    for c in checks.checks:
        logger.info("plausibility: %s", c.describe())
    if checks.failed:
        if refuse:
            raise InputError(checks.refusal())
        logger.warning("plausibility checks off: %s", checks.refusal())
    return checks


def _run(case: Case, settings: IdentifySettings, progress: Progress) -> StageResult:
    res = identify_case(case, seed_a=settings.seed_a_mm, seed_b=settings.seed_b_mm,
                        landmarks=read_landmarks(settings.landmarks), method=str(settings.method),
                        plausibility=settings.plausibility, ranges=settings.plausible,
                        progress=progress)
    plan = load_plan(case)
    sections = {k: plan[k] for k in ("identity", "conjoined", "closest_distance_mm", "shared",
                                     "classification", "figures") if k in plan}
    logger.info("method %s: %s", res.method, "conjoined" if res.conjoined else
                f"not conjoined, {res.closest_distance_mm or 0:.1f} mm apart")
    summary = ("" if res.conjoined else
               f"not conjoined: two separate heads {res.closest_distance_mm or 0:.1f} mm apart")
    return StageResult(sections=sections, files=("labels/twins.nii.gz",), summary=summary,
                       data=res)


def _record(settings: IdentifySettings) -> dict[str, Any]:
    return {"seed_a_mm": list(settings.seed_a_mm) if settings.seed_a_mm else None,
            "seed_b_mm": list(settings.seed_b_mm) if settings.seed_b_mm else None}


def _input_files(settings: IdentifySettings) -> dict[str, Path]:
    return {"landmarks_sha256": settings.landmarks} if settings.landmarks is not None else {}


STAGE = Stage(
    name="identify",
    title="twin identity, shared anatomy, classification",
    settings=IdentifySettings,
    inputs=("labels/tissues.nii.gz", "scan.nii.gz"),
    outputs=("plan:identity", "plan:conjoined", "plan:shared", "plan:classification"),
    run=_run,
    hint="check the tissue labels (both brains labelled 4) or give --seed-a/--seed-b inside "
    "each brain (world mm)",
    input_files=_input_files,
    record=_record,
    described=("seed_a_mm", "seed_b_mm"),
)

__all__ = ["STAGE", "IdentifySettings", "IdentityResult", "identify_case", "plausible_heads",
           "read_landmarks"]
