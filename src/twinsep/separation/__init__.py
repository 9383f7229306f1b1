"""Separation planning: the minimum-risk cut between the twins and its alternatives.

See ``docs/separation.md``. Public API::

    from twinsep.separation import separate, separate_case, load_risk, plan_stages
"""

from __future__ import annotations

from twinsep.separation.core import Separation, identity_copy_path, separate, separate_case
from twinsep.separation.graphcut import CutResult, Pyramid, pyramid_cut, solve_band
from twinsep.separation.risk import RiskModel, load_risk, vessel_cross_section
from twinsep.separation.staging import plan_stages
from twinsep.separation.vessels import perpendicular_section

__all__ = [
    "CutResult",
    "Pyramid",
    "RiskModel",
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
