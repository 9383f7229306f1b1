"""Settings of the reconstruction: defaults in ``twinsep/data/defaults.yaml``
(``simulate.reconstruction``).

Every constant (efficiencies, the Aya et al. rule, the fill schedule, placement and implant
options) lives in that file with its source; a user file given with ``--settings`` holds
only the keys it changes and is merged into the defaults.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from twinsep.errors import InputError
from twinsep.settings import defaults, merge


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Efficiency(_Model):
    """In-vivo fraction of the geometric gain (van Rappard et al. 1988)."""

    round: float = Field(0.25, gt=0, le=1)
    rectangular: float = Field(0.38, gt=0, le=1)
    crescent: float = Field(0.32, gt=0, le=1)


class AyaRule(_Model):
    """Scalp expander sizing rule of Aya et al. 2014."""

    min_volume_ml_per_cm2: float = Field(7.0, ge=0)
    min_width_ratio: float = Field(2.5, ge=0)


class FillSettings(_Model):
    """Fill schedule (days, fractions of the nominal volume)."""

    first_fill_day: int = Field(7, ge=7, le=10)
    interval_days: int = Field(7, ge=1, le=28)
    initial_fill_fraction: float = Field(0.10, ge=0, lt=1)
    fraction_per_fill: float = Field(0.125, gt=0, le=1)


class PlacementSettings(_Model):
    """Expander placement on the healthy scalp (mm)."""

    clearance_mm: float = Field(10.0, ge=0)
    max_per_twin: int = Field(4, ge=1, le=8)
    scalp_thickness_mm: float | None = Field(None, gt=0)


class ImplantSettings(_Model):
    """Cranial implant design (mm, ml)."""

    thickness_mm: float | None = Field(None, gt=0)
    min_thickness_mm: float = Field(2.0, gt=0)
    max_thickness_mm: float = Field(8.0, gt=0)
    fit_band_mm: tuple[float, float] = (8.0, 45.0)
    max_bulge_mm: float = Field(30.0, gt=0)
    smooth_mm: float = Field(3.0, ge=0)
    min_piece_ml: float = Field(0.2, ge=0)
    mesh_smooth_iterations: int = Field(20, ge=0)


class ReconstructionSettings(_Model):
    """All settings of the reconstruction stage."""

    version: int = 1
    separation_distance_mm: float = Field(40.0, ge=0)
    efficiency: Efficiency = Efficiency()
    overfill_factor: float = Field(1.0, gt=0, le=5)
    aya: AyaRule = AyaRule()
    fill: FillSettings = FillSettings()
    placement: PlacementSettings = PlacementSettings()
    implant: ImplantSettings = ImplantSettings()


def default_dict() -> dict[str, Any]:
    """The packaged defaults as a mapping (``simulate.reconstruction`` of defaults.yaml)."""
    return defaults("simulate.reconstruction")


@lru_cache(maxsize=1)
def default_settings() -> ReconstructionSettings:
    """The packaged defaults (``simulate.reconstruction`` of ``twinsep/data/defaults.yaml``)."""
    return ReconstructionSettings.model_validate(default_dict())


def load_settings(path: Path | None = None) -> ReconstructionSettings:
    """Defaults, with the keys of the YAML/JSON file ``path`` merged in.

    Raises
    ------
    InputError
        If the file cannot be read or holds an unknown key or a bad value.
    """
    if path is None:
        return default_settings()
    import yaml

    try:
        user = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read settings ({exc})") from exc
    if not isinstance(user, dict):
        raise InputError(f"{path}: settings must be a mapping of keys to values")
    try:
        return ReconstructionSettings.model_validate(merge(default_dict(), user))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{path}: setting {loc}: {first['msg']}") from exc
