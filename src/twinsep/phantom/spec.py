"""Options of a craniopagus phantom (all lengths in mm, angles in degrees)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Default interpenetration of the two heads (mm) by fusion type.
DEFAULT_DEPTH_MM = {"total": 26.0, "partial": 6.0}


class PhantomSpec(BaseModel):
    """Everything that defines a phantom; the same spec and seed give identical arrays.

    Attributes
    ----------
    fusion : {"total", "partial"}
        ``total``: no skull or scalp between the heads, only dura/CSF (and brain contact
        when deep). ``partial``: a bone plate with dura on either side along the interface.
    axial_rotation : float
        Rotation (degrees) of twin B about the contact normal: 0 faces the same way
        (type I), 180 opposite (type II), between is type III.
    long_axis_angle : float
        Angle (degrees) between the twins' long (inferior-superior) axes: 180 vertical,
        < 140 angular.
    fusion_depth : float or None
        How far (mm) the two heads interpenetrate along the contact normal; None picks
        26 mm for total and 6 mm for partial fusion.
    shared_sinus : bool or None
        Add a circular sinus around the junction joined to both sagittal sinuses; None
        means on for total and off for partial fusion.
    spacing : (3,) float
        Voxel size (mm) along i, j, k.
    oblique : float
        Rotation (degrees) of the image grid about the fixed axis (1, 2, 3)/sqrt(14); the
        anatomy stays where it is in world space.
    seed : int
        Seed of every random choice (deformation, undulation phase, noise).
    separate : bool
        Two heads that do not touch (a gap of ``gap`` mm along the contact normal).
    gap : float
        Gap (mm) between the heads along the contact normal when ``separate``.
    scale_a, scale_b : float
        Linear scale of the adult MNI brain template for each twin (0.72 gives ~650 ml).
    undulation : float
        Amplitude (mm) of the waviness of the interface between the twins.
    junction_offset : float
        Shift (mm) of twin B perpendicular to the contact normal (along world x).
    noise : float
        Standard deviation (HU) of the Gaussian image noise.
    blur : float
        Standard deviation (mm) of the partial-volume blur of the CT.
    deformation : float
        Amplitude (mm) of the smooth random deformation of each brain.
    age_months : float or None
        Growth option: the same twins (same seed) at this age in months. None (default)
        builds the phantom as it is, which stands for the twins at
        :data:`BASE_AGE_MONTHS`. With an age, both heads are scaled by the ratio of head
        circumferences (:func:`head_circumference_cm`), the fusion depth grows (wider
        junction) and the circular sinus gets a larger tube radius; see
        :func:`growth_model` and ``docs/growth.md``.
    placement : (6,) float or None
        Rigid placement of the whole pair in the scanner: rotations (degrees) about world
        x, y, z, then a shift (mm) ``(rx, ry, rz, tx, ty, tz)``; the anatomy is mapped by
        ``p -> R p + t`` with ``R = Rz Ry Rx`` about the world origin (twin A's brain
        centre before placement). None: no move, except with ``age_months``, which uses
        :data:`GROWTH_PLACEMENT` (a rescan is never positioned the same way).
    """

    model_config = ConfigDict(extra="forbid")

    fusion: Literal["total", "partial"] = "total"
    axial_rotation: float = 0.0
    long_axis_angle: float = Field(180.0, ge=60.0, le=180.0)
    fusion_depth: float | None = Field(None, ge=0.0, le=60.0)
    shared_sinus: bool | None = None
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    oblique: float = 0.0
    seed: int = 0
    separate: bool = False
    gap: float = Field(10.0, gt=0.0, le=50.0)
    scale_a: float = Field(0.73, ge=0.4, le=1.2)
    scale_b: float = Field(0.71, ge=0.4, le=1.2)
    undulation: float = Field(2.0, ge=0.0, le=8.0)
    junction_offset: float = Field(0.0, ge=-40.0, le=40.0)
    noise: float = Field(10.0, ge=0.0, le=200.0)
    blur: float = Field(0.8, ge=0.0, le=5.0)
    deformation: float = Field(1.5, ge=0.0, le=5.0)
    age_months: float | None = Field(None, ge=0.0, le=60.0)
    placement: tuple[float, float, float, float, float, float] | None = None

    @field_validator("spacing")
    @classmethod
    def _positive_spacing(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(v) <= 0 or max(v) > 10:
            raise ValueError(f"spacing must be in (0, 10] mm, got {v}")
        return v

    @model_validator(mode="after")
    def _defaults(self) -> PhantomSpec:
        if self.fusion_depth is None:
            self.fusion_depth = DEFAULT_DEPTH_MM[self.fusion]
        if self.shared_sinus is None:
            self.shared_sinus = self.fusion == "total"
        return self

    @property
    def depth_mm(self) -> float:
        """Interpenetration (mm) with the default filled in."""
        return float(self.fusion_depth if self.fusion_depth is not None else 0.0)

    # --- growth option ------------------------------------------------------------
    @property
    def grows(self) -> bool:
        """True when the growth option or a placement is set (the default phantom is not)."""
        return self.age_months is not None or self.placement is not None

    def growth(self) -> Growth:
        """Effective scales, fusion depth, sinus radius and placement of this spec."""
        return growth_model(self)

    def dump(self) -> dict:
        """``model_dump(mode="json")`` without the growth fields when they are unset (so
        the default phantom's truth.json is unchanged by the growth option)."""
        d = self.model_dump(mode="json")
        for key in ("age_months", "placement"):
            if d.get(key) is None:
                d.pop(key, None)
        return d


# --- growth model -----------------------------------------------------------------------
#: Age (months) that the phantom without ``age_months`` stands for.
BASE_AGE_MONTHS = 6.0

#: Head circumference (cm) by age (months): median of the WHO Child Growth Standards
#: (head circumference-for-age, 0-60 months), boys' and girls' medians averaged and
#: rounded to 0.1 cm. Linear interpolation between the rows.
HEAD_CIRCUMFERENCE_CM: tuple[tuple[float, float], ...] = (
    (0.0, 34.2), (1.0, 36.9), (2.0, 38.7), (3.0, 40.1), (4.0, 41.2), (5.0, 42.1),
    (6.0, 42.8), (7.0, 43.4), (8.0, 44.0), (9.0, 44.5), (10.0, 44.9), (11.0, 45.3),
    (12.0, 45.6), (15.0, 46.4), (18.0, 47.0), (21.0, 47.5), (24.0, 47.9), (30.0, 48.6),
    (36.0, 49.1), (48.0, 49.9), (60.0, 50.5),
)

#: Growth of the fusion depth beyond the head scale (mm per month): the junction widens.
FUSION_WIDENING_MM_PER_MONTH = 0.5
#: Relative growth of the circular sinus tube radius beyond the head scale (per month).
SINUS_GROWTH_PER_MONTH = 0.03
#: Tube radius (mm) of the circular sinus at :data:`BASE_AGE_MONTHS`.
BASE_SINUS_RADIUS_MM = 3.0
#: Placement of a grown phantom when ``placement`` is not given: about 9 degrees and
#: 9 mm away from the base phantom's placement.
GROWTH_PLACEMENT = (5.0, -4.0, 6.0, 6.0, -5.0, 4.0)


def head_circumference_cm(age_months: float) -> float:
    """Median infant head circumference (cm) at ``age_months`` (WHO, see
    :data:`HEAD_CIRCUMFERENCE_CM`)."""
    ages = [a for a, _ in HEAD_CIRCUMFERENCE_CM]
    hcs = [h for _, h in HEAD_CIRCUMFERENCE_CM]
    a = min(max(float(age_months), ages[0]), ages[-1])
    for i in range(1, len(ages)):
        if a <= ages[i]:
            f = (a - ages[i - 1]) / (ages[i] - ages[i - 1])
            return hcs[i - 1] + f * (hcs[i] - hcs[i - 1])
    return hcs[-1]


class Growth(BaseModel):
    """Effective geometry of a (possibly grown and moved) phantom."""

    age_months: float
    scale: float  # linear factor applied to both heads
    scale_a: float
    scale_b: float
    fusion_depth_mm: float
    sinus_radius_mm: float
    rotation_deg: tuple[float, float, float]
    translation_mm: tuple[float, float, float]

    def matrix(self) -> list[list[float]]:
        """4x4 placement matrix (anatomy to world mm)."""
        import numpy as np

        from twinsep.phantom.anatomy import rotation

        rx, ry, rz = self.rotation_deg
        r = (rotation(np.array([0.0, 0.0, 1.0]), rz) @ rotation(np.array([0.0, 1.0, 0.0]), ry)
             @ rotation(np.array([1.0, 0.0, 0.0]), rx))
        m = np.eye(4)
        m[:3, :3] = r
        m[:3, 3] = self.translation_mm
        return m.tolist()


def growth_model(spec: PhantomSpec) -> Growth:
    """The growth model (see ``docs/growth.md``).

    With ``age_months = M`` and the base age ``M0`` (:data:`BASE_AGE_MONTHS`):

    * head scale ``s = HC(M) / HC(M0)`` (WHO median head circumference), applied to both
      twins' template scales;
    * fusion depth ``d = d0 s + 0.5 mm/month (M - M0)`` (at least 0): the junction widens;
    * circular sinus tube radius ``r = 3 mm s (1 + 0.03/month (M - M0))`` (at least 1 mm).
    """
    placement = spec.placement
    if placement is None and spec.age_months is not None:
        placement = GROWTH_PLACEMENT
    placement = placement or (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    if spec.age_months is None:
        age, s = BASE_AGE_MONTHS, 1.0
        depth, radius = spec.depth_mm, BASE_SINUS_RADIUS_MM
    else:
        age = float(spec.age_months)
        s = head_circumference_cm(age) / head_circumference_cm(BASE_AGE_MONTHS)
        dm = age - BASE_AGE_MONTHS
        depth = max(0.0, spec.depth_mm * s + FUSION_WIDENING_MM_PER_MONTH * dm)
        radius = max(1.0, BASE_SINUS_RADIUS_MM * s * (1.0 + SINUS_GROWTH_PER_MONTH * dm))
    return Growth(
        age_months=age, scale=s, scale_a=spec.scale_a * s, scale_b=spec.scale_b * s,
        fusion_depth_mm=depth, sinus_radius_mm=radius,
        rotation_deg=tuple(float(v) for v in placement[:3]),
        translation_mm=tuple(float(v) for v in placement[3:]),
    )
