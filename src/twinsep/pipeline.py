"""The whole plan, stage after stage: ``twinsep plan SCAN --out CASE``.

Stages, in order (each also runs alone by its own command)::

    ingest → segment → identify → separate → simulate → models → viewer → schedule → report

**Skipping.** Every stage has a *key*: the SHA-256 of its name, the twinsep version, its
settings, the content hashes of its external input files (the scan, ``--tissues``,
``--roster``, the expander catalogue) and the output hashes of every earlier stage. After
a stage runs, its key and the content hashes of its outputs (files and plan.json
sections) are kept in ``CASE/.twinsep/stages.json``. On the next run a stage is skipped
when its key is unchanged and its outputs are still there with the same content. A stage
whose upstream outputs come out identical is therefore skipped too. ``force=True`` redoes
every stage; ``from_stage="separate"`` redoes that stage and every later one (earlier
stages are still checked and run if they are out of date).

**Timings.** plan.json must be byte-identical for the same input and settings, so it holds
no times. The wall time and peak memory of each stage live beside it in
``CASE/timings.json`` (referenced from plan.json ``case.timings``); the report shows them.

**Failures.** A failing stage leaves the results of the earlier stages intact (every stage
writes atomically) and raises :class:`StageError` naming the stage and what to fix; the
traceback goes to ``CASE/.twinsep/last-error.txt``. Input errors have ``exit_code`` 2,
anything else 1.

**Not conjoined.** When ``identify`` finds two separate heads the plan stops there
(separate ... schedule are "not applicable") and a short report is still written.
"""

from __future__ import annotations

import hashlib
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twinsep import __version__
from twinsep.casefolder import (
    Case,
    dumps,
    load_plan,
    read_json,
    sha256_file,
    update_plan,
    write_json,
)
from twinsep.errors import InputError

#: The stages of a plan, in order.
STAGES: tuple[str, ...] = (
    "ingest",
    "segment",
    "identify",
    "separate",
    "simulate",
    "models",
    "viewer",
    "schedule",
    "report",
)

#: One line per stage, for the progress bar and the report.
STAGE_TITLES: dict[str, str] = {
    "ingest": "read the scan",
    "segment": "tissue labels",
    "identify": "twin identity, shared anatomy, classification",
    "separate": "separation surface and stages",
    "simulate": "reconstruction: defects, expanders, implant",
    "models": "3-D models",
    "viewer": "3-D viewer",
    "schedule": "operating-room schedule",
    "report": "report (HTML, PDF)",
}

#: The command that runs each stage alone.
STAGE_COMMANDS: dict[str, str] = {
    "ingest": "twinsep ingest SCAN --out CASE",
    "segment": "twinsep segment CASE",
    "identify": "twinsep identify CASE",
    "separate": "twinsep separate CASE",
    "simulate": "twinsep simulate CASE",
    "models": "twinsep models CASE",
    "viewer": "twinsep view CASE --no-serve",
    "schedule": "twinsep schedule CASE --roster FILE",
    "report": "twinsep report CASE",
}

#: What to check when a stage fails on its input.
_HINTS: dict[str, str] = {
    "ingest": "check that SCAN is one readable 3-D CT (DICOM folder, NIfTI, NRRD or MHA)",
    "segment": "check --tissues (label map on the scan's grid, codes 0-5) or the CT's "
    "Hounsfield units",
    "identify": "check the tissue labels (both brains labelled 4) or give --seed-a/--seed-b "
    "inside each brain (world mm)",
    "separate": "check --risk, --choose/--plane and --stages, or labels/twins.nii.gz "
    "(run `twinsep identify CASE` again)",
    "simulate": "check --catalog (see examples/expanders.yaml) and --reconstruction (the keys "
    "of src/twinsep/data/reconstruction.yaml)",
    "models": "run `twinsep models CASE` to see the full message",
    "viewer": "run `twinsep view CASE --no-serve` to see the full message",
    "schedule": "check the roster file (see examples/roster.yaml and docs/schedule.md)",
    "report": "run `twinsep report CASE` to see the full message",
}

STATE_FILE = Path(".twinsep") / "stages.json"
ERROR_FILE = Path(".twinsep") / "last-error.txt"
TIMINGS_FILE = Path("timings.json")

#: Progress callback of the pipeline: ``progress(stage, description, fraction_done)``.
Progress = Callable[[str, str, float], None]


class StageError(Exception):
    """A stage failed. ``stage`` names it, ``hint`` says what to fix, ``exit_code`` is 2 for
    bad input and 1 otherwise."""

    def __init__(self, stage: str, message: str, *, hint: str = "", exit_code: int = 1):
        self.stage = stage
        self.message = message
        self.hint = hint
        self.exit_code = exit_code
        text = f"stage '{stage}' failed: {message}"
        if hint:
            text += f" — to fix: {hint}"
        super().__init__(text)


@dataclass
class PlanSettings:
    """Everything ``twinsep plan`` was asked to do (the settings of every stage).

    Attributes
    ----------
    scan : Path
        DICOM folder or file, NIfTI, NRRD or MHA.
    tissues : Path or None
        A label map to import instead of segmenting the CT.
    seed_a, seed_b : (x, y, z) or None
        Brain seeds of twin A and twin B (world mm).
    roster : Path or None
        Roster YAML for the schedule; without one the schedule stage is not run.
    catalog : Path or None
        Expander catalogue YAML (default: ``examples/expanders.yaml`` of the repository).
    keep_phi : bool
        Keep patient identifiers (case.json and the report).
    series : str or None
        SeriesInstanceUID to take from a DICOM folder holding several.
    risk : Path or None
        Risk model YAML of the separation (default: the packaged ``risk.yaml``).
    choose : str
        Separation alternative to adopt: ``min-risk``, ``sinus-to-a``, ``sinus-to-b`` or
        ``plane`` (with ``plane``).
    plane : (x, y, z, nx, ny, nz) or None
        The user's plane (world mm), for ``choose="plane"``.
    stages : int or None
        Number of operations dividing the crossing vessels (None: automatic).
    reconstruction : Path or None
        Reconstruction settings YAML (the keys it changes; see
        ``src/twinsep/data/reconstruction.yaml``).
    """

    scan: Path
    tissues: Path | None = None
    seed_a: tuple[float, float, float] | None = None
    seed_b: tuple[float, float, float] | None = None
    roster: Path | None = None
    catalog: Path | None = None
    keep_phi: bool = False
    series: str | None = None
    risk: Path | None = None
    choose: str = "min-risk"
    plane: tuple[float, float, float, float, float, float] | None = None
    stages: int | None = None
    reconstruction: Path | None = None

    def __post_init__(self) -> None:
        self.scan = Path(self.scan)
        self.tissues = Path(self.tissues) if self.tissues is not None else None
        self.roster = Path(self.roster) if self.roster is not None else None
        self.catalog = Path(self.catalog) if self.catalog is not None else None
        self.risk = Path(self.risk) if self.risk is not None else None
        self.reconstruction = (Path(self.reconstruction) if self.reconstruction is not None
                               else None)
        for name, path in (("--risk", self.risk), ("--reconstruction", self.reconstruction)):
            if path is not None and not path.is_file():
                raise InputError(f"{name} {path}: not a file")
        from twinsep.separate.alternatives import resolve_choice

        if resolve_choice(self.choose) == "plane" and self.plane is None:
            raise InputError("--choose plane needs --plane X,Y,Z,NX,NY,NZ (world mm)")
        if (self.seed_a is None) != (self.seed_b is None):
            raise InputError("give both --seed-a and --seed-b, or neither")


@dataclass
class StageOutcome:
    """What happened to one stage in one run.

    ``status`` is ``ran``, ``skipped`` (unchanged), ``not applicable`` (not conjoined, or
    no roster) or ``failed``.
    """

    stage: str
    status: str
    seconds: float = 0.0
    note: str = ""


@dataclass
class PlanResult:
    """Outcome of :func:`run_plan`."""

    case: Case
    outcomes: list[StageOutcome] = field(default_factory=list)
    conjoined: bool | None = None

    @property
    def report_html(self) -> Path:
        return self.case.root / "report.html"

    @property
    def report_pdf(self) -> Path:
        return self.case.root / "report.pdf"

    @property
    def viewer_html(self) -> Path:
        return self.case.viewer / "index.html"

    def outcome(self, stage: str) -> StageOutcome | None:
        return next((o for o in self.outcomes if o.stage == stage), None)


# --- hashing -------------------------------------------------------------------------------
def _sha(obj: Any) -> str:
    return hashlib.sha256(dumps(obj).encode()).hexdigest()


def hash_input(path: Path) -> str:
    """Content hash of an input: a file (with the data file of an MHD/NHDR/HDR header) or
    every file under a folder (relative names and contents)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    h = hashlib.sha256()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        if not files:
            raise InputError(f"{path}: empty folder")
        for p in files:
            h.update(p.relative_to(path).as_posix().encode() + b"\0")
            h.update(sha256_file(p).encode())
        return h.hexdigest()
    h.update(sha256_file(path).encode())
    name = path.name.lower()
    if name.endswith((".mhd", ".nhdr", ".hdr")):
        stem = path.name.rsplit(".", 1)[0]
        for p in sorted(path.parent.iterdir()):
            if p != path and p.is_file() and p.name.rsplit(".", 1)[0] == stem:
                h.update(p.name.encode() + sha256_file(p).encode())
    return h.hexdigest()


def _plan_section_hash(plan: dict, key: str) -> str | None:
    return _sha(plan[key]) if key in plan else None


def default_catalog() -> Path:
    """The expander catalogue used when none is given (the repository's example)."""
    local = Path("examples/expanders.yaml")
    if local.exists():
        return local
    return Path(__file__).resolve().parents[2] / "examples" / "expanders.yaml"


# --- the stages ----------------------------------------------------------------------------
@dataclass
class _Ctx:
    case: Case
    settings: PlanSettings
    progress: Progress
    plan: dict = field(default_factory=dict)

    def say(self, stage: str) -> Callable[[str, float], None]:
        return lambda text, frac: self.progress(stage, text, float(frac))


def _stage_settings(s: PlanSettings) -> dict[str, dict[str, Any]]:
    """Settings of each stage (what enters its key and plan.json ``case.settings``)."""
    catalog = s.catalog or default_catalog()
    return {
        "ingest": {"series_uid": s.series, "keep_phi": s.keep_phi},
        "segment": {"source": "import" if s.tissues is not None else "ct"},
        "identify": {"seed_a_mm": list(s.seed_a) if s.seed_a else None,
                     "seed_b_mm": list(s.seed_b) if s.seed_b else None},
        "separate": {"choose": s.choose, "risk": s.risk.name if s.risk else "packaged risk.yaml",
                     "plane": list(s.plane) if s.plane else None, "stages": s.stages},
        "simulate": {"catalog": catalog.name,
                     "settings": s.reconstruction.name if s.reconstruction else "packaged"},
        "models": {"dicom_seg": s.keep_phi},
        "viewer": {"serve": False},
        "schedule": {"roster": s.roster.name if s.roster else None},
        "report": {"keep_phi": s.keep_phi},
    }


def _external_inputs(s: PlanSettings) -> dict[str, dict[str, str]]:
    """Content hashes of the input files of each stage."""
    out: dict[str, dict[str, str]] = {name: {} for name in STAGES}
    out["ingest"]["scan_sha256"] = hash_input(s.scan)
    if s.tissues is not None:
        out["segment"]["tissues_sha256"] = hash_input(s.tissues)
    catalog = s.catalog or default_catalog()
    if catalog.exists():
        out["simulate"]["catalog_sha256"] = hash_input(catalog)
    if s.risk is not None:
        out["separate"]["risk_sha256"] = hash_input(s.risk)
    if s.reconstruction is not None:
        out["simulate"]["settings_sha256"] = hash_input(s.reconstruction)
    if s.roster is not None:
        out["schedule"]["roster_sha256"] = hash_input(s.roster)
    return out


def _run_ingest(ctx: _Ctx) -> str:
    from twinsep.ingest.read import ingest

    root = ctx.case.root
    is_case = (root / "case.json").exists() or (root / ".twinsep").exists()
    if root.exists() and any(root.iterdir()) and not is_case:
        raise InputError(f"{root}: folder is not empty and is not a twinsep case folder "
                         "(choose another --out)")
    say = ctx.say("ingest")
    res = ingest(ctx.settings.scan, root, series_uid=ctx.settings.series,
                 keep_phi=ctx.settings.keep_phi, overwrite=True,
                 progress=lambda d, done, total: say(d, done / max(total, 1)))
    return "; ".join(res.notes)


def _run_segment(ctx: _Ctx) -> str:
    from twinsep.segment.core import segment_case

    res = segment_case(ctx.case, tissues_file=ctx.settings.tissues, progress=ctx.say("segment"))
    return f"source {res.source}"


def _run_identify(ctx: _Ctx) -> str:
    from twinsep.identify.identity import identify_case

    say = ctx.say("identify")
    steps = iter(range(1, 100))
    res = identify_case(ctx.case, seed_a=ctx.settings.seed_a, seed_b=ctx.settings.seed_b,
                        progress=lambda msg: say(msg, min(0.9, next(steps) / 6)))
    if not res.conjoined:
        return f"not conjoined: heads {res.closest_distance_mm or 0:.1f} mm apart"
    return ""


def _run_separate(ctx: _Ctx) -> str:
    from twinsep.separate import separate_case

    ctx.say("separate")("minimum s-t cut, coarse to fine", 0.1)
    st = ctx.settings
    sep = separate_case(ctx.case, risk_file=st.risk, choose=st.choose, plane=st.plane,
                        stages=st.stages)
    return f"chosen: {sep.summary.get('chosen')}"


def _run_simulate(ctx: _Ctx) -> str:
    from twinsep.simulate.core import simulate_case

    catalog = ctx.settings.catalog or default_catalog()
    if not catalog.exists():
        raise InputError(f"{catalog}: expander catalogue not found (give --catalog FILE)")
    simulate_case(ctx.case, catalog=catalog, settings=ctx.settings.reconstruction,
                  progress=ctx.say("simulate"))
    return ""


def _run_models(ctx: _Ctx) -> str:
    from twinsep.casefolder import read_json
    from twinsep.models import models_case

    say = ctx.say("models")
    # DICOM-SEG copies the source's patient and study modules (as the standard requires):
    # written only with --keep-phi
    dicom = None
    source = read_json(ctx.case.case_json).get("source", {}) if ctx.case.case_json.exists() \
        else {}
    if ctx.settings.keep_phi and str(source.get("format", "")).lower().startswith("dicom"):
        scan = Path(ctx.settings.scan)
        dicom = scan if scan.is_dir() else scan.parent
    _, section = models_case(
        ctx.case, dicom=dicom, progress=lambda d, done, total: say(d, done / max(total, 1))
    )
    notes = section.get("notes") or []
    return "; ".join(notes)


def _run_viewer(ctx: _Ctx) -> str:
    from twinsep.view import build_viewer

    ctx.say("viewer")("CT slices and the 3-D scene into one page", 0.2)
    res = build_viewer(ctx.case.root)
    return f"{res.size_bytes / 1e6:.1f} MB"


def _run_schedule(ctx: _Ctx) -> str:
    from twinsep.schedule import load_roster, plan_schedule, write_outputs

    assert ctx.settings.roster is not None
    say = ctx.say("schedule")
    say("reading the roster", 0.05)
    team = load_roster(ctx.settings.roster)
    say("CP-SAT: assigning the team", 0.2)
    section = plan_schedule(load_plan(ctx.case), team)
    say("Gantt chart, run sheets, checklists", 0.8)
    section["files"] = write_outputs(section, ctx.case.root / "schedule")
    update_plan(ctx.case, schedule=section)
    return f"{section['operation']['total_h']:.1f} h"


def _run_report(ctx: _Ctx) -> str:
    from twinsep.report import build_report

    res = build_report(ctx.case, keep_phi=ctx.settings.keep_phi, progress=ctx.say("report"))
    return "" if res.pdf is not None else "PDF not written: " + res.note


_RUNNERS: dict[str, Callable[[_Ctx], str]] = {
    "ingest": _run_ingest,
    "segment": _run_segment,
    "identify": _run_identify,
    "separate": _run_separate,
    "simulate": _run_simulate,
    "models": _run_models,
    "viewer": _run_viewer,
    "schedule": _run_schedule,
    "report": _run_report,
}

#: Outputs of each stage whose content is checked before skipping it: files (relative to
#: the case folder) and ``plan:SECTION``. ``labels/twins.nii.gz`` belongs to ``separate``
#: (which rewrites the map ``identify`` made).
_OUTPUTS: dict[str, tuple[str, ...]] = {
    "ingest": ("scan.nii.gz", "case.json"),
    "segment": ("labels/tissues.nii.gz", "plan:segmentation"),
    "identify": ("plan:identity", "plan:conjoined", "plan:shared", "plan:classification"),
    "separate": ("labels/twins.nii.gz", "models/cut_surface.ply", "plan:separation"),
    "simulate": ("plan:reconstruction",),
    "models": ("plan:models",),
    "viewer": ("viewer/index.html",),
    "schedule": ("plan:schedule",),
    "report": ("report.html",),
}


def _output_hashes(case: Case, stage: str) -> dict[str, str | None]:
    plan = load_plan(case)
    out: dict[str, str | None] = {}
    for item in _OUTPUTS[stage]:
        if item.startswith("plan:"):
            out[item] = _plan_section_hash(plan, item[5:])
        else:
            p = case.root / item
            out[item] = sha256_file(p) if p.is_file() else None
    return out


def _outputs_intact(case: Case, stage: str, recorded: dict[str, str | None]) -> bool:
    now = _output_hashes(case, stage)
    # outputs that a stage does not always write (e.g. plan:models) may be None both times
    return all(now.get(k) == v for k, v in recorded.items()) and any(
        v is not None for v in now.values())


# --- state and timings ---------------------------------------------------------------------
def load_state(case: Case) -> dict[str, dict]:
    """``CASE/.twinsep/stages.json``: per stage its key and output hashes."""
    p = case.root / STATE_FILE
    if not p.exists():
        return {}
    try:
        data = read_json(p)
    except (OSError, ValueError):
        return {}
    return data.get("stages", {}) if isinstance(data, dict) else {}


def _save_state(case: Case, stages: dict[str, dict]) -> None:
    write_json(case.root / STATE_FILE, {"stages": stages, "twinsep_version": __version__})


def load_timings(case: Case) -> dict:
    """``CASE/timings.json`` (empty when the plan has not been run)."""
    p = case.root / TIMINGS_FILE
    try:
        return read_json(p) if p.exists() else {}
    except (OSError, ValueError):
        return {}


def _peak_rss_mb() -> float:
    """Peak resident memory (MB) of this process and of finished child processes."""
    scale = 1.0 if sys.platform != "darwin" else 1.0 / 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale / 1024
    return round(max(own, kids), 1)


def _write_timings(case: Case, outcomes: list[StageOutcome], previous: dict,
                   total_s: float) -> None:
    old = previous.get("stages", {}) if isinstance(previous, dict) else {}
    stages: dict[str, dict] = {}
    for o in outcomes:
        entry = {"status": o.status, "seconds": round(o.seconds, 3), "note": o.note}
        if o.status == "ran":
            entry["last_run_seconds"] = round(o.seconds, 3)
        elif o.stage in old and "last_run_seconds" in old[o.stage]:
            entry["last_run_seconds"] = old[o.stage]["last_run_seconds"]
        stages[o.stage] = entry
    data = {
        "about": "wall time (s) of each stage in the last `twinsep plan` run; kept beside "
        "plan.json so that plan.json stays byte-identical",
        "stages": stages,
        "total_seconds": round(total_s, 3),
        "peak_rss_mb": _peak_rss_mb(),
        "cpu_count": os.cpu_count(),
        "twinsep_version": __version__,
    }
    # the only non-deterministic file of the case folder, on purpose
    write_json(case.root / TIMINGS_FILE, data)


# --- the pipeline --------------------------------------------------------------------------
def _check_stage(name: str | None) -> None:
    if name is not None and name not in STAGES:
        raise InputError(f"unknown stage {name!r}; one of: {', '.join(STAGES)}")


def _case_section(s: PlanSettings, inputs: dict) -> dict:
    flat = {k: v for stage in STAGES for k, v in inputs[stage].items()}
    return {
        "inputs": flat,
        "settings": _stage_settings(s),
        "stages": list(STAGES),
        "timings": TIMINGS_FILE.as_posix(),
        "state": STATE_FILE.as_posix(),
    }


def run_plan(
    settings: PlanSettings,
    out: Path,
    *,
    force: bool = False,
    from_stage: str | None = None,
    until: str | None = None,
    progress: Progress | None = None,
    on_stage: Callable[[StageOutcome], None] | None = None,
) -> PlanResult:
    """Run the whole plan on a scan into the case folder ``out``.

    Parameters
    ----------
    settings : PlanSettings
        The scan and the settings of every stage.
    out : Path
        The case folder (created; an existing case folder is updated).
    force : bool
        Redo every stage.
    from_stage : str, optional
        Redo this stage and all later ones.
    until : str, optional
        Stop after this stage (tests, benchmarks).
    progress : callable, optional
        ``progress(stage, description, fraction_done)``.
    on_stage : callable, optional
        Called with each :class:`StageOutcome` as soon as the stage is done.

    Returns
    -------
    PlanResult

    Raises
    ------
    StageError
        A stage failed; the earlier results are intact.
    InputError
        Bad settings (unknown stage, missing input file).
    """
    _check_stage(from_stage)
    _check_stage(until)
    t_start = time.perf_counter()
    say: Progress = progress or (lambda stage, text, frac: None)
    case = Case(Path(out).absolute())
    try:
        inputs = _external_inputs(settings)
    except InputError as exc:
        raise StageError("ingest", str(exc), hint=_HINTS["ingest"], exit_code=2) from None
    stage_settings = _stage_settings(settings)
    state = load_state(case) if case.root.exists() else {}
    previous_timings = load_timings(case) if case.root.exists() else {}
    redo_from = 0 if force else (STAGES.index(from_stage) if from_stage else len(STAGES))
    ctx = _Ctx(case=case, settings=settings, progress=say)
    result = PlanResult(case=case)
    upstream: dict[str, dict] = {}
    stopped = False

    def finish(outcome: StageOutcome) -> None:
        result.outcomes.append(outcome)
        if case.root.exists():
            _write_timings(case, result.outcomes, previous_timings,
                           time.perf_counter() - t_start)
        if on_stage is not None:
            on_stage(outcome)

    for index, stage in enumerate(STAGES):
        # stages that do not apply
        reason = ""
        if stopped and stage != "report":
            reason = "not conjoined: nothing to separate"
        elif stage == "schedule" and settings.roster is None:
            reason = "no --roster given"
        if reason:
            finish(StageOutcome(stage, "not applicable", note=reason))
            continue
        key = _sha({
            "stage": stage,
            "twinsep_version": __version__,
            "settings": stage_settings[stage],
            "inputs": inputs[stage],
            "upstream": upstream,
        })
        rec = state.get(stage)
        up_to_date = (
            index < redo_from
            and rec is not None
            and rec.get("key") == key
            and case.root.is_dir()
            and _outputs_intact(case, stage, rec.get("outputs", {}))
        )
        if up_to_date:
            say(stage, "unchanged", 1.0)
            upstream[stage] = rec["outputs"]
            finish(StageOutcome(stage, "skipped", note="inputs and settings unchanged"))
        else:
            if state.pop(stage, None) is not None and case.root.is_dir():
                _save_state(case, state)  # invalid until it has run again
            say(stage, STAGE_TITLES[stage], 0.0)
            t0 = time.perf_counter()
            try:
                note = _RUNNERS[stage](ctx)
            except InputError as exc:
                finish(StageOutcome(stage, "failed", time.perf_counter() - t0, str(exc)))
                _log_error(case, stage)
                raise StageError(stage, str(exc), hint=_HINTS[stage], exit_code=2) from exc
            except Exception as exc:  # turned into a StageError
                finish(StageOutcome(stage, "failed", time.perf_counter() - t0, str(exc)))
                where = _log_error(case, stage)
                hint = (f"this looks like a bug or unexpected data; details in {where}; "
                        f"run `{STAGE_COMMANDS[stage]}` alone to retry")
                raise StageError(stage, f"{type(exc).__name__}: {exc}", hint=hint,
                                 exit_code=1) from exc
            seconds = time.perf_counter() - t0
            if stage == "ingest":
                state = {}  # a new case folder: nothing downstream is valid
            outputs = _output_hashes(case, stage)
            state[stage] = {"key": key, "outputs": outputs}
            _save_state(case, state)
            upstream[stage] = outputs
            say(stage, "done", 1.0)
            finish(StageOutcome(stage, "ran", seconds, note))
        if stage == "ingest":
            # what the plan is made from (deterministic: input hashes and settings only)
            section = _case_section(settings, inputs)
            _set_case_section(case, section)
        if stage == "identify":
            result.conjoined = load_plan(case).get("conjoined")
            if result.conjoined is False:
                stopped = True
        if stage == until:
            break
    return result


def _set_case_section(case: Case, section: dict) -> None:
    """Write plan.json ``case`` (``update_plan(case, case=...)`` cannot name it)."""
    import json

    from twinsep.casefolder import PLAN_SCHEMA_VERSION, validate_plan

    plan = load_plan(case)
    value = json.loads(dumps(section))
    if plan.get("case") == value:
        return
    plan["schema_version"] = PLAN_SCHEMA_VERSION
    plan["twinsep_version"] = __version__
    plan["case"] = value
    validate_plan(plan)
    write_json(case.plan, plan)


def _log_error(case: Case, stage: str) -> Path | None:
    if not case.root.is_dir():
        return None
    path = case.root / ERROR_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"stage {stage}\n{traceback.format_exc()}", encoding="utf-8")
    return path


__all__ = [
    "STAGES",
    "STAGE_COMMANDS",
    "STAGE_TITLES",
    "PlanResult",
    "PlanSettings",
    "StageError",
    "StageOutcome",
    "default_catalog",
    "hash_input",
    "load_state",
    "load_timings",
    "run_plan",
]
