"""``twinsep compare``: growth between two scans of the same twins.

Pure core: :mod:`twinsep.compare.core` (registration, twin matching, the growth table);
case layer and the stage: :mod:`twinsep.compare.case`.
"""

from twinsep.compare.case import STAGE, CompareSettings, compare, compare_cases, load_case
from twinsep.compare.core import (
    CaseData,
    Comparison,
    compare_data,
    growth_figure,
    growth_table,
    report_markdown,
    report_rows,
)

__all__ = [
    "STAGE",
    "CaseData",
    "CompareSettings",
    "Comparison",
    "compare",
    "compare_cases",
    "compare_data",
    "growth_figure",
    "growth_table",
    "load_case",
    "report_markdown",
    "report_rows",
]
