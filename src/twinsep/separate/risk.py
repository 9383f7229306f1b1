"""The risk model of the separation cut, kept in a YAML file a surgeon can edit.

A cut face between two neighbouring voxels costs ``area_mm2 * (c_u + c_v) / 2``, where
``c`` is the risk per mm2 of the tissue of each voxel (see ``twinsep/data/risk.yaml``).
A vessel's cost grows with its local cross-section ``A`` (mm2)::

    c_vessel = vessel * (1 + A / reference_mm2) ** exponent

and, for the cut only (not for the risk it reports), with the distance ``d`` (mm) from the
identity interface, so that a vessel crossing between the twins is divided where it
crosses the surgeon's plane rather than where its lumen happens to be narrowest::

    c_vessel_cut = c_vessel * (1 + d / division_reference_mm)

The file's shape is a frozen pydantic model per mapping (:class:`RiskFile`,
:class:`TissueCosts`, ...; unknown keys refused), read with
:func:`twinsep.settings.read_mapping` like every settings file; an error is one line naming
the file and the key (``my-risk.yaml: setting tissue_cost_per_mm2.brain: Input should be
greater than 0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from twinsep.errors import InputError
from twinsep.labels import Tissue
from twinsep.settings import Settings, read_mapping

#: Tissue names of the YAML file, by tissue code.
TISSUE_KEYS: dict[int, str] = {
    int(Tissue.SCALP): "scalp",
    int(Tissue.BONE): "bone",
    int(Tissue.CSF): "dura",
    int(Tissue.BRAIN): "brain",
    int(Tissue.VESSEL): "vessel",
}


@dataclass(frozen=True)
class RiskModel:
    """Risk per mm2 of cut surface, by tissue, and the vessel cross-section factor.

    Parameters
    ----------
    cost_per_mm2 : dict
        Risk per mm2 of cut face for ``scalp``, ``bone``, ``dura``, ``brain``, ``vessel``
        (the vessel value is the base cost before the cross-section factor).
    reference_mm2 : float
        Cross-section (mm2) at which a vessel's cost doubles (with ``exponent`` 1).
    exponent : float
        Power of the cross-section factor (0: no growth).
    division_reference_mm : float
        Distance (mm) from the identity interface at which the cost of dividing a vessel
        doubles (0: no division-site factor); used by the cut, not in the reported risk.
    source : str
        Where the model came from (file path or ``"default"``).
    """

    cost_per_mm2: dict[str, float] = field(default_factory=dict)
    reference_mm2: float = 10.0
    exponent: float = 1.0
    division_reference_mm: float = 1.0
    source: str = "default"

    def __post_init__(self) -> None:
        missing = [k for k in TISSUE_KEYS.values() if k not in self.cost_per_mm2]
        if missing:
            raise InputError(f"risk model: missing tissue costs {', '.join(missing)}")
        for k, v in self.cost_per_mm2.items():
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise InputError(f"risk model: cost of {k} must be a positive number, got {v!r}")
        if not self.reference_mm2 > 0:
            raise InputError("risk model: vessel_cross_section.reference_mm2 must be > 0")
        if not (math.isfinite(self.exponent) and self.exponent >= 0):
            raise InputError("risk model: vessel_cross_section.exponent must be >= 0")
        if not (math.isfinite(self.division_reference_mm) and self.division_reference_mm >= 0):
            raise InputError("risk model: vessel_division.reference_mm must be >= 0")

    def scaled(self, tissue: str, factor: float) -> RiskModel:
        """A copy with the cost of one tissue multiplied by ``factor``."""
        costs = dict(self.cost_per_mm2)
        costs[tissue] = costs[tissue] * factor
        return replace(self, cost_per_mm2=costs)

    def as_dict(self) -> dict:
        """Plain values for plan.json."""
        return {
            "source": self.source,
            "tissue_cost_per_mm2": {k: float(self.cost_per_mm2[k]) for k in TISSUE_KEYS.values()},
            "vessel_cross_section": {
                "reference_mm2": float(self.reference_mm2),
                "exponent": float(self.exponent),
            },
            "vessel_division": {"reference_mm": float(self.division_reference_mm)},
        }

    def vessel_cost(self, cross_section_mm2: np.ndarray | float) -> np.ndarray:
        """Risk per mm2 of a vessel of the given cross-section (mm2)."""
        a = np.asarray(cross_section_mm2, dtype=np.float64)
        return self.cost_per_mm2["vessel"] * (1.0 + a / self.reference_mm2) ** self.exponent

    def division_factor(self, distance_mm: np.ndarray | float) -> np.ndarray:
        """Factor on a vessel's cost at ``distance_mm`` from the identity interface."""
        d = np.asarray(distance_mm, dtype=np.float64)
        if self.division_reference_mm == 0:
            return np.ones_like(d)
        return 1.0 + d / self.division_reference_mm

    def voxel_cost(
        self,
        tissues: np.ndarray,
        cross_section_mm2: np.ndarray | None,
        interface_mm: np.ndarray | None = None,
    ) -> np.ndarray:
        """Risk per mm2 of each voxel (float32; 0 for background).

        Parameters
        ----------
        tissues : ndarray of uint8
            Tissue codes.
        cross_section_mm2 : ndarray or None
            Local vessel cross-section (mm2) on the same grid (used on vessel voxels).
        interface_mm : ndarray or None
            Distance (mm) from the identity interface on the same grid (read on vessel
            voxels): given, the vessel costs include the division-site factor (the cost
            the cut minimises); None, the plain risk.
        """
        lut = np.zeros(256, dtype=np.float32)
        for code, name in TISSUE_KEYS.items():
            lut[code] = self.cost_per_mm2[name]
        cost = lut[tissues]
        if cross_section_mm2 is not None or interface_mm is not None:
            v = tissues == Tissue.VESSEL
            c = (self.vessel_cost(cross_section_mm2[v]) if cross_section_mm2 is not None
                 else np.full(int(v.sum()), self.cost_per_mm2["vessel"]))
            if interface_mm is not None:
                c = c * self.division_factor(interface_mm[v])
            cost[v] = c.astype(np.float32)
        return cost


# --- the risk file ---------------------------------------------------------------------
#: A finite number (an int or a float; not a string, not a boolean) above 0, or at least 0.
Positive = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]
NonNegative = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]


class TissueCosts(Settings):
    """``tissue_cost_per_mm2``: risk per mm2 of cut face, one positive number per tissue."""

    scalp: Positive
    bone: Positive
    dura: Positive
    brain: Positive
    vessel: Positive


class VesselCrossSectionFile(Settings):
    """``vessel_cross_section``: growth of a vessel's cost with its cross-section."""

    reference_mm2: Positive = 10.0
    exponent: NonNegative = 1.0


class VesselDivisionFile(Settings):
    """``vessel_division``: growth of a vessel's cut cost away from the identity interface."""

    reference_mm: NonNegative = 1.0


class RiskFile(Settings):
    """The shape of a risk file (``twinsep/data/risk.yaml``); an empty section is the
    defaults."""

    version: Literal[1] = 1
    tissue_cost_per_mm2: TissueCosts
    vessel_cross_section: VesselCrossSectionFile | None = None
    vessel_division: VesselDivisionFile | None = None

    def risk_model(self, source: str) -> RiskModel:
        """The :class:`RiskModel` this file describes."""
        xs = self.vessel_cross_section or VesselCrossSectionFile()
        div = self.vessel_division or VesselDivisionFile()
        costs = self.tissue_cost_per_mm2
        return RiskModel(
            cost_per_mm2={k: float(getattr(costs, k)) for k in TISSUE_KEYS.values()},
            reference_mm2=float(xs.reference_mm2),
            exponent=float(xs.exponent),
            division_reference_mm=float(div.reference_mm),
            source=source,
        )


#: The model of each mapping of the file, by its key.
_SECTIONS: dict[tuple, type[BaseModel]] = {
    (): RiskFile,
    ("tissue_cost_per_mm2",): TissueCosts,
    ("vessel_cross_section",): VesselCrossSectionFile,
    ("vessel_division",): VesselDivisionFile,
}


def _message(exc: ValidationError, source: str) -> str:
    """One line in the settings convention (``{source}: setting {key}: {what}``): an unknown
    key first (a misspelt one is also a missing one), with the keys expected there; every
    missing tissue."""
    errors = exc.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(first["loc"])
    parent = loc[:-1]
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        what = "tissue" if parent == ("tissue_cost_per_mm2",) else "setting"
        msg = f"unknown {what}"
        if parent in _SECTIONS:
            msg += f" (expected {', '.join(_SECTIONS[parent].model_fields)})"
    elif first["type"] == "model_type":
        msg = "must be a mapping"
    elif first["type"] == "missing":
        also = [str(e["loc"][-1]) for e in errors
                if e is not first and e["type"] == "missing" and tuple(e["loc"][:-1]) == parent]
        if also:
            msg += f" (also missing: {', '.join(also)})"
    return f"{source}: setting {'.'.join(map(str, loc))}: {msg}"


def parse_risk(data: Any, source: str = "risk model") -> RiskModel:
    """Check a risk mapping (as read from YAML) and turn it into a :class:`RiskModel`.

    Raises
    ------
    InputError
        One line naming ``source``, the key and what is wrong, e.g.
        ``my-risk.yaml: setting tissue_cost_per_mm2.brain: Input should be greater than 0``.
    """
    if not isinstance(data, dict):
        raise InputError(f"{source}: a risk file must be a mapping with a "
                         "`tissue_cost_per_mm2` mapping")
    try:
        shape = RiskFile.model_validate(data)
    except ValidationError as exc:
        raise InputError(_message(exc, source)) from None
    return shape.risk_model(source)


def load_risk(path: str | Path | None = None) -> RiskModel:
    """Read a risk model from YAML (the packaged default when ``path`` is None).

    Raises
    ------
    InputError
        The file is missing or unreadable, or a key or value is wrong (one line naming the
        file and the key).
    """
    if path is None:
        from importlib.resources import files

        import yaml

        text = files("twinsep").joinpath("data/risk.yaml").read_text(encoding="utf-8")
        return parse_risk(yaml.safe_load(text), "default")
    p = Path(path)
    return parse_risk(read_mapping(p, "risk"), str(p))


def vessel_cross_section(
    tissues: np.ndarray, spacing_kji: tuple[float, float, float]
) -> np.ndarray:
    """Local cross-section (mm2) of the vessels, 0 elsewhere (float32, the whole grid).

    See :func:`twinsep.separate.vessels.local_calibre` (computed on the vessels'
    bounding box from their wall, not on the whole volume).
    """
    from twinsep.separate.vessels import local_calibre

    out = np.zeros(tissues.shape, dtype=np.float32)
    box, xs = local_calibre(tissues == Tissue.VESSEL, spacing_kji)
    if box is not None:
        out[box] = xs
    return out
