"""Reconstruction after separation: defects, scalp expanders and the cranial implant.

>>> from twinsep.simulate import expander_gain
>>> expander_gain("round", 6.0, 6.0, 3.0).expected_cm2    # doctest: +ELLIPSIS
7.068...
"""

from __future__ import annotations

from twinsep.simulate.expanders import (
    ExpanderGain,
    Product,
    expander_gain,
    fill_schedule,
    height_for_volume,
    load_catalog,
)
from twinsep.simulate.settings import ReconstructionSettings, load_settings

__all__ = [
    "STAGE",
    "ExpanderGain",
    "Product",
    "ReconstructionSettings",
    "SimulateSettings",
    "default_catalog",
    "expander_gain",
    "fill_schedule",
    "height_for_volume",
    "load_catalog",
    "load_settings",
    "simulate_arrays",
    "simulate_case",
]


def __getattr__(name: str):
    # the stage and its core import trimesh and scipy: only when asked for
    if name in ("simulate_arrays",):
        from twinsep.simulate import core

        return getattr(core, name)
    if name in ("STAGE", "SimulateSettings", "default_catalog", "simulate_case"):
        from twinsep.simulate import case

        return getattr(case, name)
    raise AttributeError(name)
