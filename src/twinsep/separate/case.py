"""The case layer of ``twinsep separate``: reads the tissue and identity maps, writes the
final owner map ``labels/twins.nii.gz`` (the identity map kept as
``labels/twins-identity.nii.gz``), ``models/cut_surface.ply`` and plan.json ``separation``."""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from twinsep.casefolder import Case, load_plan, sha256_array, sha256_file, update_plan, write_volume
from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.labels import Owner
from twinsep.progress import Progress
from twinsep.separate.alternatives import resolve_choice
from twinsep.separate.core import Separation, separate
from twinsep.separate.mesh import write_ply
from twinsep.separate.risk import load_risk
from twinsep.settings import Settings, default
from twinsep.stage import Stage, StageResult

logger = logging.getLogger(__name__)


class Alternative(StrEnum):
    """The separation alternatives (docs/separation.md)."""

    MIN_RISK = "min-risk"
    SINUS_TO_A = "sinus-to-a"
    SINUS_TO_B = "sinus-to-b"
    PLANE = "plane"

    @property
    def key(self) -> str:
        """The key in plan.json ``separation.alternatives`` (``min_risk`` ...)."""
        return resolve_choice(self.value)


class SeparateSettings(Settings):
    """Options of ``twinsep separate`` (defaults: ``separate`` in defaults.yaml)."""

    risk: Path | None = Field(default("separate.risk"), description="Risk model YAML.")
    choose: Alternative = Field(Alternative(default("separate.choose")),
                                description="The alternative to adopt.")
    plane_mm: tuple[float, float, float, float, float, float] | None = Field(
        default("separate.plane_mm"), description="User plane: a point and a normal (mm).")
    stages: int | None = Field(default("separate.stages"), ge=1,
                               description="Operations dividing the crossing vessels.")
    max_share: float = Field(default("separate.max_share"), gt=0, le=1,
                             description="Largest share of the crossing cross-section per "
                             "stage (automatic staging).")
    coarse_mm: float = Field(default("separate.coarse_mm"), gt=0,
                             description="Coarsest level of the pyramid (mm).")
    corridor_mm: float = Field(default("separate.corridor_mm"), gt=0,
                               description="How far (mm) the cut may leave the interface.")
    sinus_mm: float = Field(default("separate.sinus_mm"), gt=0,
                            description="Reach (mm) of the shared sinus (alternatives b, c).")

    @field_validator("choose", mode="before")
    @classmethod
    def _spelling(cls, value: Any) -> Any:
        if isinstance(value, str) and not isinstance(value, Alternative):
            return Alternative(resolve_choice(value).replace("_", "-"))
        return value

    def model_post_init(self, context: Any) -> None:
        if self.choose is Alternative.PLANE and self.plane_mm is None:
            raise InputError("--choose plane needs --plane X,Y,Z,NX,NY,NZ (world mm)")
        if self.risk is not None and not Path(self.risk).is_file():
            raise InputError(f"--risk {self.risk}: not a file")


# --- the case folder -------------------------------------------------------------------
def identity_copy_path(case: Case) -> Path:
    """``labels/twins-identity.nii.gz``: the identity owner map kept by ``separate``."""
    return case.labels / "twins-identity.nii.gz"


def separate_case(case: Case, *, risk_file: str | Path | None = None, **kwargs) -> Separation:
    """Run :func:`separate` on a case folder and write its results.

    Reads ``labels/tissues.nii.gz`` and the identity owner map; writes
    ``labels/twins.nii.gz`` (the final owner map, 0/1/2), ``models/cut_surface.ply`` and
    plan.json ``separation``. The identity map is first saved to
    ``labels/twins-identity.nii.gz``; it is refreshed whenever ``labels/twins.nii.gz`` is
    not the map the last separation wrote (``identify`` was run again).
    """
    case.require(case.tissues, hint="run `twinsep segment` first")
    case.require(case.twins, hint="run `twinsep identify` first")
    ident_path = identity_copy_path(case)
    plan = load_plan(case)
    twins = Volume.read(case.twins)
    written = (plan.get("separation") or {}).get("owner_map_sha256")
    if not ident_path.exists() or sha256_array(twins.array) != written:
        write_volume(twins, ident_path)
    identity = Volume.read(ident_path)
    tissues = Volume.read(case.tissues)
    risk = load_risk(risk_file)
    sep = separate(tissues, identity, risk, **kwargs)
    final = tissues.with_array(sep.owner.astype(np.uint8))
    write_volume(final, case.twins)
    case.models.mkdir(parents=True, exist_ok=True)
    mesh_path = case.models / "cut_surface.ply"
    write_ply(mesh_path, *sep.mesh, comment="twinsep separation cut surface")
    sep.summary.update({
        "owner_map": "labels/twins.nii.gz",
        "identity_map": "labels/twins-identity.nii.gz",
        "identity_map_sha256": sha256_array(identity.array),
        "owner_map_sha256": sha256_array(final.array),
        "cut_surface": "models/cut_surface.ply",
        "cut_surface_sha256": sha256_file(mesh_path),
        "owner_codes": {str(int(Owner.BACKGROUND)): "background", str(int(Owner.A)): "A",
                        str(int(Owner.B)): "B"},
    })
    update_plan(case, separation=sep.summary)
    return sep


def _run(case: Case, settings: SeparateSettings, progress: Progress) -> StageResult:
    progress("minimum s-t cut, coarse to fine", 0.1)
    sep = separate_case(case, risk_file=settings.risk, choose=settings.choose.key,
                        plane=settings.plane_mm, stages=settings.stages,
                        max_share=settings.max_share, coarse_mm=settings.coarse_mm,
                        corridor_mm=settings.corridor_mm, sinus_mm=settings.sinus_mm)
    logger.info("chosen %s; %d stage(s)", sep.summary.get("chosen"),
                len(sep.summary["staging"]["stages"]))
    return StageResult(sections={"separation": sep.summary},
                       files=("labels/twins.nii.gz", "labels/twins-identity.nii.gz",
                              "models/cut_surface.ply"),
                       summary=f"chosen: {sep.summary.get('chosen')}", data=sep)


def _record(settings: SeparateSettings) -> dict[str, Any]:
    return {"choose": settings.choose.value,
            "risk": settings.risk.name if settings.risk else "packaged risk.yaml",
            "plane": list(settings.plane_mm) if settings.plane_mm else None,
            "stages": settings.stages}


def _input_files(settings: SeparateSettings) -> dict[str, Path]:
    return {"risk_sha256": settings.risk} if settings.risk is not None else {}


STAGE = Stage(
    name="separate",
    title="separation surface and stages",
    settings=SeparateSettings,
    inputs=("labels/tissues.nii.gz", "labels/twins.nii.gz"),
    outputs=("labels/twins.nii.gz", "models/cut_surface.ply", "plan:separation"),
    run=_run,
    hint="check --risk, --choose/--plane and --stages, or labels/twins.nii.gz (run `twinsep "
    "identify CASE` again)",
    input_files=_input_files,
    record=_record,
    described=("choose", "risk", "plane_mm", "stages"),
)

__all__ = ["STAGE", "Alternative", "SeparateSettings", "identity_copy_path", "separate_case"]
