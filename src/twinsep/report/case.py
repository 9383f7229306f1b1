"""The case layer of ``twinsep report``: reads the case folder, writes ``report.html``
(self-contained) and ``report.pdf``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field

from twinsep.casefolder import Case, load_plan, write_text_atomic
from twinsep.errors import InputError
from twinsep.progress import Progress
from twinsep.report.build import ReportResult, render_3d, render_html
from twinsep.report.reconstruction_figure import reconstruction_figure
from twinsep.settings import Settings, default
from twinsep.stage import Stage, StageResult

logger = logging.getLogger(__name__)


class ReportSettings(Settings):
    """Options of ``twinsep report`` (defaults: ``report`` in defaults.yaml)."""

    keep_phi: bool = Field(default("report.keep_phi"),
                           description="Show the patient name and ID kept by ingest.")
    pdf: bool = Field(default("report.pdf"), description="Also write report.pdf.")


def build_report(
    case: Case,
    *,
    keep_phi: bool = False,
    pdf: bool = True,
    progress: Progress | None = None,
) -> ReportResult:
    """Write ``CASE/report.html`` (self-contained) and ``CASE/report.pdf``.

    Parameters
    ----------
    case : Case
        The case folder (needs plan.json).
    keep_phi : bool
        Show the patient identifiers kept by ``twinsep ingest --keep-phi``.
    pdf : bool
        Also write the PDF (WeasyPrint).
    progress : callable, optional
        ``progress(description, fraction_done)``.
    """
    case = Case(case.root if isinstance(case, Case) else case)
    say = progress or (lambda _t, _f: None)
    case.require(case.plan, hint="run `twinsep plan` or the stages first")
    plan = load_plan(case)
    if plan.get("conjoined") is True and case.tissues.exists() and case.twins.exists():
        say("3-D render", 0.1)
        render_3d(case)
    stale = case.figures / "reconstruction.png"
    if plan.get("reconstruction"):
        say("reconstruction figure", 0.3)
        if reconstruction_figure(case) is None and stale.exists():
            stale.unlink()
    elif stale.exists():
        stale.unlink()
    say("HTML", 0.5)
    doc, ids = render_html(case, keep_phi=keep_phi)
    html_path = case.root / "report.html"
    write_text_atomic(html_path, doc)
    pdf_path: Path | None = None
    note = ""
    if pdf:
        say("PDF (WeasyPrint)", 0.6)
        try:
            import weasyprint
        except (ImportError, OSError) as exc:  # missing system libraries (pango)
            note = f"WeasyPrint unavailable: {exc}"
        else:
            pdf_doc, _ = render_html(case, keep_phi=keep_phi, pdf=True)
            try:
                data = weasyprint.HTML(string=pdf_doc, base_url=str(case.root)).write_pdf()
            except Exception as exc:
                raise InputError(f"report.pdf could not be laid out: {exc}") from exc
            pdf_path = case.root / "report.pdf"
            write_text_atomic(pdf_path, data)
    say("done", 1.0)
    return ReportResult(html=html_path, pdf=pdf_path, sections=ids, note=note)


def _run(case: Case, settings: ReportSettings, progress: Progress) -> StageResult:
    res = build_report(case, keep_phi=settings.keep_phi, pdf=settings.pdf, progress=progress)
    files = ("report.html",) + (("report.pdf",) if res.pdf is not None else ())
    notes = (res.note,) if res.note else ()
    if res.note:
        logger.warning("%s", res.note)
    summary = "" if res.pdf is not None or not settings.pdf else "PDF not written: " + res.note
    return StageResult(files=files, notes=notes, summary=summary, data=res)


def _record(settings: ReportSettings) -> dict[str, Any]:
    return {"keep_phi": settings.keep_phi}


STAGE = Stage(
    name="report",
    title="report (HTML, PDF)",
    settings=ReportSettings,
    inputs=("plan.json", "case.json", "timings.json"),
    outputs=("report.html",),
    run=_run,
    hint="run `twinsep report CASE` to see the full message",
    record=_record,
    described=("keep_phi",),
)

__all__ = ["STAGE", "ReportSettings", "build_report"]
