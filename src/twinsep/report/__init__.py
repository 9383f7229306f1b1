"""The case report: ``CASE/report.html`` (one self-contained file) and ``CASE/report.pdf``.

>>> from twinsep.report import build_report
>>> res = build_report(Case("case"))          # doctest: +SKIP
>>> res.html, res.pdf                          # doctest: +SKIP
"""

from __future__ import annotations

from twinsep.report.build import (
    CONJOINED_SECTIONS,
    NOT_CONJOINED_SECTIONS,
    ReportResult,
    render_3d,
    render_html,
    shared_vessel_mask,
)
from twinsep.report.case import STAGE, ReportSettings, build_report

__all__ = [
    "CONJOINED_SECTIONS",
    "NOT_CONJOINED_SECTIONS",
    "STAGE",
    "ReportResult",
    "ReportSettings",
    "build_report",
    "render_3d",
    "render_html",
    "shared_vessel_mask",
]
