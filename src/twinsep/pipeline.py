"""The whole plan, stage after stage: ``twinsep plan SCAN --out CASE``.

The plan is the ordered list :data:`STAGES` of :class:`~twinsep.stage.Stage` declarations
and one loop, :func:`run_plan`::

    ingest → segment → identify → separate → simulate → models → view → schedule → report

**Settings.** :class:`PlanSettings` holds every stage's settings model, one field per
stage; :func:`plan_settings` builds it from the scan, a settings file
(``{stage: {key: value}}``), the plan's named options and ``stage.key=value`` assignments,
in that order of precedence (later wins).

**Skipping.** Every stage has a *key*: the SHA-256 of its name, the twinsep version, its
settings, the content hashes of its external input files (the scan, ``--tissues``, the
roster, the expander catalogue...) and the output hashes of every earlier stage. After a
stage runs, its key and the content hashes of its outputs (files and plan.json sections)
are kept in ``CASE/.twinsep/stages.json``. On the next run a stage is skipped when its key
is unchanged and its outputs are still there with the same content. ``force=True`` redoes
every stage; ``from_stage="separate"`` redoes that stage and every later one.

**Timings and log.** plan.json must be byte-identical for the same input and settings, so
it holds no times. The wall time and peak memory of each stage live beside it in
``CASE/timings.json``; versions, settings, notes, warnings and timings go to the case's
log ``CASE/.twinsep/twinsep.log``.

**Failures.** A failing stage leaves the results of the earlier stages intact (every stage
writes atomically) and raises :class:`StageError` naming the stage and what to fix; the
traceback goes to ``CASE/.twinsep/last-error.txt``. Input errors have ``exit_code`` 2,
anything else 1.

**Not conjoined.** When ``identify`` finds two separate heads the plan stops there
(separate ... schedule are "not applicable") and a short report is still written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from twinsep import __version__
from twinsep.casefolder import (
    PLAN_SCHEMA_VERSION,
    TIMINGS_FILE,
    Case,
    case_lock,
    dumps,
    is_case_folder,
    load_plan,
    load_timings,
    read_json,
    sha256_file,
    validate_plan,
    write_json,
)
from twinsep.compare import STAGE as COMPARE
from twinsep.errors import InputError, environment_error
from twinsep.identify import STAGE as IDENTIFY
from twinsep.identify import IdentifySettings
from twinsep.ingest import STAGE as INGEST
from twinsep.ingest import IngestSettings
from twinsep.log import case_log, versions
from twinsep.models import STAGE as MODELS
from twinsep.models import ModelsSettings
from twinsep.progress import Progress, silent, within
from twinsep.report import STAGE as REPORT
from twinsep.report import ReportSettings
from twinsep.schedule import STAGE as SCHEDULE
from twinsep.schedule import ScheduleSettings
from twinsep.segment import STAGE as SEGMENT
from twinsep.segment import SegmentSettings
from twinsep.separate import STAGE as SEPARATE
from twinsep.separate import SeparateSettings
from twinsep.settings import (
    file_names,
    merge,
    parse_assignments,
    read_mapping,
    validation_message,
)
from twinsep.simulate.case import STAGE as SIMULATE
from twinsep.simulate.case import SimulateSettings, default_catalog
from twinsep.stage import Stage, StageResult, Status
from twinsep.view import STAGE as VIEW
from twinsep.view import ViewSettings

logger = logging.getLogger(__name__)

#: The stages of a plan, in order.
STAGES: tuple[Stage, ...] = (INGEST, SEGMENT, IDENTIFY, SEPARATE, SIMULATE, MODELS, VIEW,
                             SCHEDULE, REPORT)

#: The stages by name (the command's name; ``viewer`` is also accepted for ``view``).
BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES} | {s.key: s for s in STAGES}

#: Commands that run a stage outside the plan (on a case the plan made).
COMMANDS: dict[str, Stage] = {**BY_NAME, COMPARE.name: COMPARE}

STATE_FILE = Path(".twinsep") / "stages.json"
ERROR_FILE = Path(".twinsep") / "last-error.txt"


def stage(name: str) -> Stage:
    """The stage called ``name``, or an :class:`InputError` listing them."""
    if name not in BY_NAME:
        raise InputError(f"unknown stage {name!r}; one of: "
                         f"{', '.join(s.name for s in STAGES)}")
    return BY_NAME[name]


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


class PlanSettings(BaseModel):
    """The settings of every stage of a plan, one field per stage (its command's name).

    Build it with :func:`plan_settings`; ``settings.of(stage)`` is one stage's model.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ingest: IngestSettings = Field(default_factory=IngestSettings)
    segment: SegmentSettings = Field(default_factory=SegmentSettings)
    identify: IdentifySettings = Field(default_factory=IdentifySettings)
    separate: SeparateSettings = Field(default_factory=SeparateSettings)
    simulate: SimulateSettings = Field(default_factory=SimulateSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    view: ViewSettings = Field(default_factory=ViewSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)

    @property
    def scan(self) -> Path:
        """The scan the plan starts from."""
        if self.ingest.scan is None:
            raise InputError("the plan needs a scan")
        return self.ingest.scan

    def of(self, stage: Stage) -> Any:
        """The settings model of ``stage``."""
        return getattr(self, stage.name)


def options_to_settings(
    *,
    tissues: Path | None = None,
    seed_a: tuple[float, float, float] | None = None,
    seed_b: tuple[float, float, float] | None = None,
    roster: Path | None = None,
    catalog: Path | None = None,
    keep_phi: bool | None = None,
    series: str | None = None,
    risk: Path | None = None,
    choose: str | None = None,
    plane: tuple[float, ...] | None = None,
    stages: int | None = None,
    reconstruction: Path | None = None,
    scan: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """The named options of ``twinsep plan`` as stage settings (only those given)."""
    out: dict[str, dict[str, Any]] = {}

    def put(stage_name: str, key: str, value: Any) -> None:
        if value is not None:
            out.setdefault(stage_name, {})[key] = value

    put("segment", "tissues", tissues)
    put("identify", "seed_a_mm", seed_a)
    put("identify", "seed_b_mm", seed_b)
    put("schedule", "roster", roster)
    put("simulate", "catalog", catalog)
    put("ingest", "series_uid", series)
    put("separate", "risk", risk)
    put("separate", "choose", choose)
    put("separate", "plane_mm", plane)
    put("separate", "stages", stages)
    put("simulate", "reconstruction_file", reconstruction)
    if keep_phi:
        put("ingest", "keep_phi", True)
        put("report", "keep_phi", True)
        # the DICOM-SEG must carry the source's identifiers: only with --keep-phi; the
        # models stage writes it when the scan is a DICOM series
        put("models", "dicom_seg", True)
        put("models", "dicom", scan)
    return out


def _source_of(layers: list[tuple[str, Mapping[str, Any]]], path: list[str]) -> str:
    """The last layer that sets ``path`` (for the error message)."""
    for name, data in reversed(layers):
        node: Any = data
        for part in path:
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            return name
    return "settings"


def plan_settings(
    scan: Path,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    files: Iterable[Path] = (),
    assignments: Iterable[str] = (),
    **named: Any,
) -> PlanSettings:
    """:class:`PlanSettings` from the scan and, later winning over earlier, settings files
    (``{stage: {key: value}}``), ``options`` (stage settings), the plan's ``named`` options
    (``tissues=``, ``seed_a=``, ``roster=``, ``choose=``... as in ``twinsep plan``) and
    ``stage.key=value`` assignments.

    Raises
    ------
    InputError
        An unknown stage or key, or a bad value, naming the file or option it came from.
    """
    layers: list[tuple[str, Mapping[str, Any]]] = []
    for f in files:
        data = read_mapping(Path(f), "settings")
        layers.append((str(f), data))
    if options:
        layers.append(("settings", options))
    if named:
        layers.append(("options", options_to_settings(scan=Path(scan), **named)))
    items = list(assignments)
    if items:
        layers.append(("--set", parse_assignments(items)))
    merged: dict[str, Any] = {}
    for name, data in layers:
        for key, value in data.items():
            if key not in PlanSettings.model_fields and key not in BY_NAME:
                raise InputError(f"{name}: unknown stage {key!r}; one of: "
                                 f"{', '.join(s.name for s in STAGES)}")
            if not isinstance(value, Mapping):
                raise InputError(f"{name}: {key} must be a mapping of settings")
        merged = merge(merged, {BY_NAME[k].name: v for k, v in data.items()})
    merged = merge(merged, {"ingest": {"scan": Path(scan)}})
    try:
        return PlanSettings.model_validate(merged)
    except ValidationError as exc:
        loc = [str(p) for p in exc.errors()[0]["loc"]]
        raise InputError(validation_message(exc, _source_of(layers, loc))) from None


def stage_settings(
    st: Stage,
    options: Mapping[str, Any] | None = None,
    *,
    assignments: Iterable[str] = (),
) -> Any:
    """The settings model of one stage from its command's ``options`` (only those given)
    and ``key=value`` assignments (``--set``), or an :class:`InputError` naming the key."""
    layers: list[tuple[str, Mapping[str, Any]]] = []
    given = {k: v for k, v in (options or {}).items() if v is not None}
    if given:
        layers.append(("options", given))
    items = list(assignments)
    if items:
        layers.append(("--set", parse_assignments([f"{st.name}.{i}" for i in items])[st.name]))
    merged: dict[str, Any] = {}
    for _, data in layers:
        merged = merge(merged, data)
    try:
        return st.settings.model_validate(merged)
    except ValidationError as exc:
        loc = [str(p) for p in exc.errors()[0]["loc"]]
        raise InputError(validation_message(exc, _source_of(layers, loc), st.name)) from None


@dataclass
class StageOutcome:
    """What happened to one stage in one run.

    ``status`` is a :class:`~twinsep.stage.Status`: ran, skipped (unchanged), not
    applicable (not conjoined, or no roster) or failed.
    """

    stage: str
    status: Status
    seconds: float = 0.0
    note: str = ""
    result: StageResult | None = None


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
        key = BY_NAME[stage].key if stage in BY_NAME else stage
        return next((o for o in self.outcomes if o.stage == key), None)


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


def _input_hashes(settings: PlanSettings) -> dict[str, dict[str, str]]:
    """Content hashes of the external input files of each stage."""
    out: dict[str, dict[str, str]] = {}
    for s in STAGES:
        try:
            out[s.key] = {k: hash_input(p) for k, p in s.input_files(settings.of(s)).items()}
        except InputError as exc:
            raise StageError(s.name, str(exc), hint=s.hint, exit_code=2) from None
    return out


def _output_hashes(case: Case, stage: Stage) -> dict[str, str | None]:
    plan = load_plan(case)
    out: dict[str, str | None] = {}
    for item in stage.outputs:
        if item.startswith("plan:"):
            out[item] = _sha(plan[item[5:]]) if item[5:] in plan else None
        else:
            p = case.root / item
            out[item] = sha256_file(p) if p.is_file() else None
    return out


def _outputs_intact(case: Case, stage: Stage, recorded: dict[str, str | None]) -> bool:
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
        entry = {"status": o.status, "seconds": round(o.seconds, 3), "note": o.note,
                 "title": BY_NAME[o.stage].title}
        if o.status is Status.RAN:
            entry["last_run_seconds"] = round(o.seconds, 3)
        elif o.stage in old and "last_run_seconds" in old[o.stage]:
            entry["last_run_seconds"] = old[o.stage]["last_run_seconds"]
        stages[o.stage] = entry
    data = {
        "about": "wall time (s) of each stage in the last `twinsep plan` run; kept beside "
        "plan.json so that plan.json stays byte-identical",
        "order": [s.key for s in STAGES],
        "stages": stages,
        "total_seconds": round(total_s, 3),
        "peak_rss_mb": _peak_rss_mb(),
        "cpu_count": os.cpu_count(),
        "twinsep_version": __version__,
    }
    # the only non-deterministic file of the case folder, on purpose
    write_json(case.root / TIMINGS_FILE, data)


def _case_section(settings: PlanSettings, inputs: dict[str, dict[str, str]]) -> dict:
    """plan.json ``case``: what the plan was made from (input hashes and settings)."""
    flat = {k: v for s in STAGES for k, v in inputs[s.key].items()}
    return {
        "inputs": flat,
        "settings": {s.key: s.describe(settings.of(s)) for s in STAGES},
        "stages": [s.key for s in STAGES],
        "timings": TIMINGS_FILE.as_posix(),
        "state": STATE_FILE.as_posix(),
    }


def _set_case_section(case: Case, section: dict) -> None:
    """Write plan.json ``case`` (``update_plan(case, case=...)`` cannot name it)."""
    plan = load_plan(case)
    value = json.loads(dumps(section))
    if plan.get("case") == value:
        return
    plan["schema_version"] = PLAN_SCHEMA_VERSION
    plan["twinsep_version"] = __version__
    plan["case"] = value
    validate_plan(plan)
    write_json(case.plan, plan)


def _log_error(case: Case, stage: Stage) -> Path | None:
    if not is_case_folder(case.root):  # never write into a folder twinsep did not make
        return None
    path = case.root / ERROR_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"stage {stage.name}\n{traceback.format_exc()}", encoding="utf-8")
    return path


# --- running -------------------------------------------------------------------------------
def run_stage(stage: Stage, case: Case, settings: Any,
              progress: Progress | None = None) -> StageResult:
    """Run one stage on a case, with its log lines in the case's log.

    This is what each command calls; :func:`run_plan` calls it for every stage.
    """
    with case_lock(case.root):
        return _run_stage(stage, case, settings, progress or silent)


def _run_stage(stage: Stage, case: Case, settings: Any, report: Progress) -> StageResult:
    text = json.dumps(file_names(settings.model_dump(mode="json")), sort_keys=True)
    t0 = time.perf_counter()
    try:
        with case_log(case):
            result = stage.run(case, settings, report)
    except Exception as exc:
        with case_log(case) as log:
            log.error("%s failed (%s: %s) with settings %s", stage.name, type(exc).__name__,
                      exc, text)
        raise
    with case_log(case) as log:  # ingest makes the folder: log into it afterwards
        log.info("%s: settings %s", stage.name, text)
        for note in result.notes:
            log.info("%s: note: %s", stage.name, note)
        log.info("%s: done in %.2f s%s", stage.name, time.perf_counter() - t0,
                 f" ({result.summary})" if result.summary else "")
    return result


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
        The scan and the settings of every stage (:func:`plan_settings`).
    out : Path
        The case folder (created; an existing case folder is updated).
    force : bool
        Redo every stage.
    from_stage : str, optional
        Redo this stage and all later ones.
    until : str, optional
        Stop after this stage (tests, benchmarks).
    progress : callable, optional
        ``progress(message, fraction)`` over the whole plan; the message starts with the
        stage's name.
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
        Bad settings (unknown stage).
    """
    first_redo = 0 if force else (STAGES.index(stage(from_stage)) if from_stage else None)
    last = stage(until) if until else None
    settings.scan  # noqa: B018 - a plan without a scan is refused before anything runs
    case = Case(Path(out).absolute())
    if case.root.exists() and not case.root.is_dir():
        raise StageError(INGEST.name, f"{case.root}: exists and is not a folder (choose "
                         "another --out)", exit_code=2)
    with case_lock(case.root):
        run = _PlanRun(settings, case, progress or silent, on_stage)
        for index, st in enumerate(STAGES):
            run.step(index, st, redo=first_redo is not None and index >= first_redo)
            if st is last:
                break
    with case_log(run.case) as log:
        log.info("plan: %.2f s, peak memory %.0f MB", time.perf_counter() - run.t_start,
                 _peak_rss_mb())
    return run.result


class _PlanRun:
    """The state of one run of the plan: input hashes, the case's stage state, outcomes."""

    def __init__(self, settings: PlanSettings, case: Case, say: Progress,
                 on_stage: Callable[[StageOutcome], None] | None) -> None:
        self.t_start = time.perf_counter()
        self.settings, self.case, self.say, self.on_stage = settings, case, say, on_stage
        self.inputs = _input_hashes(settings)
        mine = is_case_folder(case.root)
        self.state = load_state(case) if mine else {}
        self.previous_timings = load_timings(case) if mine else {}
        self.result = PlanResult(case=case)
        self.upstream: dict[str, dict] = {}
        self.stopped = False

    def finish(self, outcome: StageOutcome) -> None:
        self.result.outcomes.append(outcome)
        if is_case_folder(self.case.root):  # only into a case folder twinsep made
            _write_timings(self.case, self.result.outcomes, self.previous_timings,
                           time.perf_counter() - self.t_start)
        if self.on_stage is not None:
            self.on_stage(outcome)

    def key(self, st: Stage) -> str:
        """The stage's key: what it is, its settings, its input files, its upstream."""
        return _sha({
            "stage": st.key,
            "twinsep_version": __version__,
            "settings": file_names(self.settings.of(st).model_dump(mode="json")),
            "inputs": self.inputs[st.key],
            "upstream": self.upstream,
        })

    def up_to_date(self, st: Stage, key: str) -> bool:
        rec = self.state.get(st.key)
        return (rec is not None and rec.get("key") == key and self.case.root.is_dir()
                and _outputs_intact(self.case, st, rec.get("outputs", {})))

    def step(self, index: int, st: Stage, *, redo: bool) -> None:
        """Skip, run or pass over one stage."""
        report = within(lambda m, f, n=st.name: self.say(f"{n}: {m}", f),
                        index / len(STAGES), (index + 1) / len(STAGES))
        reason = ("not conjoined: nothing to separate" if self.stopped and st is not REPORT
                  else st.applies(self.settings.of(st)))
        if reason:
            self.finish(StageOutcome(st.key, Status.NOT_APPLICABLE, note=reason))
            return
        key = self.key(st)
        if not redo and self.up_to_date(st, key):
            report("unchanged", 1.0)
            self.upstream[st.key] = self.state[st.key]["outputs"]
            self.finish(StageOutcome(st.key, Status.SKIPPED,
                                     note="inputs and settings unchanged"))
        else:
            self.run(st, key, report)
        if st is INGEST:
            # what the plan is made from (deterministic: input hashes and settings only)
            _set_case_section(self.case, _case_section(self.settings, self.inputs))
        if st is IDENTIFY:
            self.result.conjoined = load_plan(self.case).get("conjoined")
            self.stopped = self.result.conjoined is False

    def run(self, st: Stage, key: str, report: Progress) -> None:
        """Run one stage, keep its key and output hashes; a failure becomes a StageError."""
        case = self.case
        if self.state.pop(st.key, None) is not None and case.root.is_dir():
            _save_state(case, self.state)  # invalid until it has run again
        report(st.title, 0.0)
        t0 = time.perf_counter()
        try:
            res = run_stage(st, case, self._settings_to_run(st), report)
        except Exception as exc:
            self.finish(StageOutcome(st.key, Status.FAILED, time.perf_counter() - t0,
                                     str(exc)))
            where = _log_error(case, st)
            raise _stage_error(st, exc, where) from exc
        seconds = time.perf_counter() - t0
        if st is INGEST:
            self.state = {}  # a new case folder: nothing downstream is valid
            with case_log(case) as log:
                log.info("twinsep plan: %s", json.dumps(versions(), sort_keys=True))
        outputs = _output_hashes(case, st)
        self.state[st.key] = {"key": key, "outputs": outputs}
        _save_state(case, self.state)
        self.upstream[st.key] = outputs
        report("done", 1.0)
        self.finish(StageOutcome(st.key, Status.RAN, seconds, res.summary, result=res))

    def _settings_to_run(self, st: Stage) -> Any:
        settings = self.settings.of(st)
        if st is not INGEST:
            return settings
        # the plan re-ingests into its own case folder only (ingest refuses any other)
        return settings.model_copy(update={"overwrite": True})


def _stage_error(st: Stage, exc: Exception, where: Path | None) -> StageError:
    """The :class:`StageError` of a failed stage: bad input (exit 2) or a bug (exit 1)."""
    if isinstance(exc, InputError):
        return StageError(st.name, str(exc), hint=st.hint, exit_code=2)
    env = environment_error(exc)
    if env is not None:
        return StageError(st.name, str(env), exit_code=2)
    details = f"details in {where}; " if where is not None else ""
    hint = f"this looks like a bug or unexpected data; {details}run `{st.command}` alone to retry"
    return StageError(st.name, f"{type(exc).__name__}: {exc}", hint=hint, exit_code=1)

__all__ = [
    "BY_NAME",
    "STAGES",
    "PlanResult",
    "PlanSettings",
    "StageError",
    "StageOutcome",
    "default_catalog",
    "hash_input",
    "load_state",
    "load_timings",
    "options_to_settings",
    "plan_settings",
    "run_plan",
    "run_stage",
    "stage",
    "stage_settings",
]
