"""The risk model of the separation cut, kept in a YAML file a surgeon can edit.

A cut face between two neighbouring voxels costs ``area_mm2 * (c_u + c_v) / 2``, where
``c`` is the risk per mm2 of the tissue of each voxel (see ``twinsep/data/risk.yaml``).
A vessel's cost grows with its local cross-section ``A`` (mm2)::

    c_vessel = vessel * (1 + A / reference_mm2) ** exponent

and, for the cut only (not for the risk it reports), with the distance ``d`` (mm) from the
identity interface, so that a vessel crossing between the twins is divided where it
crosses the surgeon's plane rather than where its lumen happens to be narrowest::

    c_vessel_cut = c_vessel * (1 + d / division_reference_mm)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from twinsep.errors import InputError
from twinsep.labels import Tissue

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


def load_risk(path: str | Path | None = None) -> RiskModel:
    """Read a risk model from YAML (the packaged default when ``path`` is None)."""
    import yaml

    if path is None:
        from importlib.resources import files

        text = files("twinsep").joinpath("data/risk.yaml").read_text()
        source = "default"
    else:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{p}: no such risk file")
        text = p.read_text(encoding="utf-8")
        source = str(p)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tissue_cost_per_mm2"), dict):
        raise InputError(f"{source}: a risk file needs a `tissue_cost_per_mm2` mapping")
    xs = data.get("vessel_cross_section") or {}
    if not isinstance(xs, dict):
        raise InputError(f"{source}: `vessel_cross_section` must be a mapping")
    div = data.get("vessel_division") or {}
    if not isinstance(div, dict):
        raise InputError(f"{source}: `vessel_division` must be a mapping")
    costs = data["tissue_cost_per_mm2"]
    unknown = sorted(set(costs) - set(TISSUE_KEYS.values()))
    if unknown:
        raise InputError(f"{source}: unknown tissue(s) {', '.join(map(str, unknown))}")
    try:
        return RiskModel(
            cost_per_mm2={k: float(v) for k, v in costs.items()},
            reference_mm2=float(xs.get("reference_mm2", 10.0)),
            exponent=float(xs.get("exponent", 1.0)),
            division_reference_mm=float(div.get("reference_mm", 1.0)),
            source=source,
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: {exc}") from None


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
