"""Separation planning: the minimum-risk cut between the twins and its alternatives.

See ``docs/separation.md``. Public API::

    from twinsep.separate import separate, separate_case, load_risk, plan_stages
"""

from __future__ import annotations

from twinsep.separate.case import (
    STAGE,
    Alternative,
    SeparateSettings,
    identity_copy_path,
    separate_case,
)
from twinsep.separate.core import Separation, separate
from twinsep.separate.graphcut import CutResult, Pyramid, pyramid_cut, solve_band
from twinsep.separate.risk import RiskModel, load_risk, vessel_cross_section
from twinsep.separate.staging import plan_stages
from twinsep.separate.vessels import perpendicular_section

__all__ = [
    "STAGE",
    "Alternative",
    "CutResult",
    "Pyramid",
    "RiskModel",
    "SeparateSettings",
    "Separation",
    "identity_copy_path",
    "load_risk",
    "perpendicular_section",
    "plan_stages",
    "pyramid_cut",
    "separate",
    "separate_case",
    "solve_band",
    "vessel_cross_section",
]
