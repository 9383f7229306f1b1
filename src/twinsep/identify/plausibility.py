"""Is this two children's heads? Plausibility checks on the tissue and owner maps.

A scan that is not two children's heads must be refused, not planned: a CT of one plastic
skull phantom, an adult head, a scan in the wrong units. :func:`check_plausibility` measures
what identify found (per twin: brain volume, head length; both: bone against brain, the
brain's Hounsfield units, air inside the skull, how far apart the two brains' centres are
for their size) and compares each figure with a range for children. The ranges and their
sources are ``identify.plausible`` in defaults.yaml; every range can be changed and the
whole test turned off (``identify.plausibility``).

Measures (ml for volumes, mm for lengths, HU for intensities)::

    brain_ml            brain (code 4) of the twin
    head_length_mm      longest extent of the twin's head (all its tissue) along its own
                        principal axes
    bone_to_brain       bone volume / brain volume, both twins together
    brain_hu            median HU of the brain voxels (needs the CT on the same grid)
    intracranial_air    share of CSF/dura + brain + vessel voxels below -200 HU (air inside
                        the skull; needs the CT)
    brain_spacing       distance (mm) between the two brains' centroids / the twins' mean
                        head length (mm), conjoined only: two heads joined end to end or
                        at an angle keep their brains most of a head length apart; the two
                        "brains" that one head cut in two gives lie within a third of it
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from twinsep.image import Volume
from twinsep.labels import Tissue
from twinsep.settings import defaults

__all__ = ["Check", "PlausibilityResult", "PlausibleRanges", "check_plausibility", "measure"]

#: HU below which a voxel inside the skull is air (half way between air and fat).
AIR_HU = -200.0

_R = defaults("identify.plausible")

Range = tuple[float, float]


class PlausibleRanges(BaseModel):
    """Ranges of a child's head (defaults and sources: ``identify.plausible``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brain_ml: Range = Field(tuple(_R["brain_ml"]),
                            description="Brain volume (ml) of each twin: [low, high].")
    head_length_mm: Range = Field(tuple(_R["head_length_mm"]),
                                  description="Longest extent (mm) of each twin's head.")
    bone_to_brain: Range = Field(tuple(_R["bone_to_brain"]),
                                 description="Bone volume / brain volume, both twins.")
    brain_hu: Range = Field(tuple(_R["brain_hu"]),
                            description="Median HU of the brain voxels.")
    intracranial_air: Range = Field(tuple(_R["intracranial_air"]),
                                    description="Share of the skull's contents below -200 HU.")
    brain_spacing: Range = Field(tuple(_R["brain_spacing"]),
                                 description="Brain centroid distance / mean head length.")


@dataclass(frozen=True)
class Check:
    """One plausibility check.

    Attributes
    ----------
    name : str
        The measure, e.g. ``"brain_ml"`` (also the key of :class:`PlausibleRanges`).
    value : float
        What was measured (unit in ``unit``).
    low, high : float
        The plausible range.
    unit : str
        ``"ml"``, ``"mm"``, ``"HU"`` or ``""`` (a ratio).
    twin : str or None
        ``"A"``, ``"B"`` or None (both twins).
    passed : bool
        ``low <= value <= high``.
    """

    name: str
    value: float
    low: float
    high: float
    unit: str
    twin: str | None
    passed: bool

    def describe(self) -> str:
        """One phrase: ``twin A brain 62 ml, outside 150-1800 ml``."""
        who = f"twin {self.twin} " if self.twin else ""
        unit = f" {self.unit}" if self.unit else ""
        label = _LABELS[self.name]
        where = "within" if self.passed else "outside"
        return (f"{who}{label} {_fmt(self.value)}{unit}, {where} "
                f"{_fmt(self.low)}-{_fmt(self.high)}{unit}")

    def to_plan(self) -> dict[str, Any]:
        """This check as plan.json records it."""
        return {"name": self.name, "twin": self.twin, "value": round(self.value, 4),
                "range": [self.low, self.high], "unit": self.unit, "passed": self.passed}


_LABELS = {
    "brain_ml": "brain",
    "head_length_mm": "head length",
    "bone_to_brain": "bone/brain volume ratio",
    "brain_hu": "brain median",
    "intracranial_air": "share of air inside the skull",
    "brain_spacing": "distance of the brains' centres / head length",
}
_UNITS = {"brain_ml": "ml", "head_length_mm": "mm", "bone_to_brain": "", "brain_hu": "HU",
          "intracranial_air": "", "brain_spacing": ""}


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.2g}"


@dataclass
class PlausibilityResult:
    """The checks made and whether all passed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_plan(self) -> dict[str, Any]:
        """``{"passed": bool, "checks": [...]}`` for plan.json ``identity.plausibility``."""
        return {"passed": self.passed, "checks": [c.to_plan() for c in self.checks]}

    def refusal(self) -> str:
        """One line naming every failed check and how to override (empty when all pass)."""
        bad = self.failed
        if not bad:
            return ""
        what = "; ".join(c.describe() for c in bad)
        keys = sorted({c.name for c in bad})
        first, low, high = bad[0].name, bad[0].low, bad[0].high
        return (f"not two children's heads: {what}; if the scan is right, widen the range "
                f"(--set identify.plausible.{first}=[{_fmt(low)},{_fmt(high)}]; ranges: "
                f"{', '.join(keys)}) or turn the check off (--set identify.plausibility=false; "
                "`twinsep identify` alone: --set plausibility=false)")


def _head_length_mm(mask: np.ndarray, spacing_kji: tuple[float, ...], world) -> float:
    """Longest extent (mm) of ``mask`` along its principal axes (voxel centres + 1 voxel)."""
    idx = np.argwhere(mask)
    if len(idx) == 0:
        return 0.0
    step = max(1, len(idx) // 200_000)
    pts = world(idx[::step].astype(float))
    pts = pts - pts.mean(axis=0)
    _, _, vt = np.linalg.svd(pts, full_matrices=False)
    proj = pts @ vt.T
    extent = proj.max(axis=0) - proj.min(axis=0)
    return float(extent.max() + min(spacing_kji))


def measure(
    tissues: Volume,
    owner: Volume,
    *,
    ct: Volume | None = None,
    conjoined: bool = True,
) -> dict[str, dict[str | None, float]]:
    """The figures the checks compare, ``{name: {twin or None: value}}``.

    Parameters
    ----------
    tissues : Volume
        Tissue codes (0-5).
    owner : Volume
        Owner codes on the same grid (1 twin A, 2 twin B).
    ct : Volume, optional
        The CT (HU) on the same grid: adds ``brain_hu`` and ``intracranial_air``.
    conjoined : bool
        Adds ``brain_spacing`` when True.

    Returns
    -------
    dict
        Volumes in ml, lengths in mm, HU, ratios.
    """
    t = np.asarray(tissues.array)
    o = np.asarray(owner.array)
    vox = tissues.voxel_volume_ml
    brain = t == Tissue.BRAIN
    out: dict[str, dict[str | None, float]] = {"brain_ml": {}, "head_length_mm": {}}
    centroids: dict[str, np.ndarray] = {}

    def world(ijk_kji: np.ndarray) -> np.ndarray:
        return tissues.index_to_world(ijk_kji)

    for code, twin in ((1, "A"), (2, "B")):
        mine = o == code
        b = brain & mine
        out["brain_ml"][twin] = float(b.sum() * vox)
        out["head_length_mm"][twin] = _head_length_mm(mine & (t > 0), tissues.spacing_kji, world)
        if b.any():
            centroids[twin] = world(np.argwhere(b).mean(axis=0, keepdims=True))[0]
    brain_total = float(brain.sum() * vox)
    bone_total = float((t == Tissue.BONE).sum() * vox)
    out["bone_to_brain"] = {None: bone_total / brain_total if brain_total > 0 else float("inf")}
    if ct is not None:
        hu = np.asarray(ct.array)
        out["brain_hu"] = {None: float(np.median(hu[brain])) if brain.any() else float("nan")}
        inside = (t == Tissue.CSF) | brain | (t == Tissue.VESSEL)
        n = int(inside.sum())
        out["intracranial_air"] = {None: float((hu[inside] < AIR_HU).sum() / n) if n else 0.0}
    if conjoined and len(centroids) == 2:
        length = 0.5 * (out["head_length_mm"]["A"] + out["head_length_mm"]["B"])
        dist = float(np.linalg.norm(centroids["A"] - centroids["B"]))
        out["brain_spacing"] = {None: dist / length if length > 0 else 0.0}
    return out


def check_plausibility(
    tissues: Volume,
    owner: Volume,
    *,
    ct: Volume | None = None,
    conjoined: bool = True,
    ranges: PlausibleRanges | None = None,
) -> PlausibilityResult:
    """Compare :func:`measure`'s figures with the ranges of children's heads.

    Parameters
    ----------
    tissues, owner : Volume
        Tissue codes and owner codes (1 twin A, 2 twin B) on one grid.
    ct : Volume, optional
        The CT in HU on the same grid (the HU checks are skipped without it).
    conjoined : bool
        Whether the heads touch (the brains' spacing is checked only then).
    ranges : PlausibleRanges, optional
        The ranges (the packaged defaults when omitted).

    Returns
    -------
    PlausibilityResult
        Every check with its value, range and outcome; nothing is raised here.
    """
    r = ranges or PlausibleRanges()
    checks: list[Check] = []
    for name, values in measure(tissues, owner, ct=ct, conjoined=conjoined).items():
        low, high = getattr(r, name)
        for twin, value in values.items():
            ok = bool(np.isfinite(value) and low <= value <= high)
            checks.append(Check(name=name, value=float(value), low=float(low),
                                high=float(high), unit=_UNITS[name], twin=twin, passed=ok))
    return PlausibilityResult(checks=checks)
