"""The case layer of ``twinsep simulate``: reads the tissue and final owner maps, writes the
wound, skull, implant and expander meshes in ``models/`` and plan.json ``reconstruction``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from twinsep.casefolder import Case, update_plan
from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.progress import Progress
from twinsep.settings import Settings, default, merge
from twinsep.simulate import expanders as ex
from twinsep.simulate.core import simulate_arrays
from twinsep.simulate.settings import ReconstructionSettings, default_settings, load_settings
from twinsep.stage import Stage, StageResult

logger = logging.getLogger(__name__)


def default_catalog() -> Path:
    """The expander catalogue used when none is given (the repository's example)."""
    local = Path("examples/expanders.yaml")
    if local.exists():
        return local
    return Path(__file__).resolve().parents[3] / "examples" / "expanders.yaml"


class SimulateSettings(Settings):
    """Options of ``twinsep simulate`` (defaults: ``simulate`` in defaults.yaml).

    ``reconstruction_file`` (YAML, only the keys it changes) is merged into the defaults;
    keys given in ``reconstruction`` as well win over the file's.
    """

    catalog: Path | None = Field(default("simulate.catalog"),
                                 description="Expander catalogue YAML.")
    reconstruction_file: Path | None = Field(
        default("simulate.reconstruction_file"),
        description="YAML file of reconstruction settings to change.")
    reconstruction: ReconstructionSettings = Field(
        default_factory=default_settings, description="The reconstruction settings.")

    @model_validator(mode="before")
    @classmethod
    def _merge_file(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("reconstruction_file"),
                                                        str | Path):
            return data  # nothing to merge (a bad value is refused by the field itself)
        over = data.get("reconstruction")
        if isinstance(over, ReconstructionSettings):
            return data
        base = load_settings(Path(data["reconstruction_file"])).model_dump(mode="json")
        return {**data, "reconstruction": merge(base, over or {})}

    @property
    def catalog_path(self) -> Path:
        """The catalogue in use (``catalog`` or the repository's example)."""
        return self.catalog if self.catalog is not None else default_catalog()


def simulate_case(case, *, catalog: Path, settings: Path | ReconstructionSettings | None = None,
                  progress: Progress | None = None) -> dict:
    """Run :func:`simulate_arrays` on a case folder; write models and plan.json.

    Returns the ``reconstruction`` section as written.
    """
    case.require(case.tissues, hint="run `twinsep segment` first")
    case.require(case.twins, hint="run `twinsep separate` first")
    s = settings if isinstance(settings, ReconstructionSettings) else load_settings(settings)
    products = ex.load_catalog(catalog)
    tissues = Volume.read(case.tissues)
    owner = Volume.read(case.twins)
    case.models.mkdir(parents=True, exist_ok=True)
    section = simulate_arrays(tissues, owner, products=products, settings=s,
                              models_dir=case.models, progress=progress)
    section.pop("_arrays")
    section["catalog"] = Path(catalog).name
    update_plan(case, reconstruction=section)
    return section


def _run(case: Case, settings: SimulateSettings, progress: Progress) -> StageResult:
    catalog = settings.catalog_path
    if not catalog.exists():
        raise InputError(f"{catalog}: expander catalogue not found (give --catalog FILE)")
    section = simulate_case(case, catalog=catalog, settings=settings.reconstruction,
                            progress=progress)
    for warning in section.get("warnings") or ():
        logger.warning("%s", warning)
    return StageResult(sections={"reconstruction": section},
                       notes=tuple(section.get("warnings") or ()), data=section)


def _record(settings: SimulateSettings) -> dict[str, Any]:
    file = settings.reconstruction_file
    return {"catalog": settings.catalog_path.name,
            "settings": file.name if file is not None else "packaged"}


def _input_files(settings: SimulateSettings) -> dict[str, Path]:
    out: dict[str, Path] = {}
    if settings.catalog_path.exists():
        out["catalog_sha256"] = settings.catalog_path
    if settings.reconstruction_file is not None:
        out["settings_sha256"] = settings.reconstruction_file
    return out


STAGE = Stage(
    name="simulate",
    title="reconstruction: defects, expanders, implant",
    settings=SimulateSettings,
    inputs=("labels/tissues.nii.gz", "labels/twins.nii.gz"),
    outputs=("plan:reconstruction",),
    run=_run,
    hint="check --catalog (see examples/expanders.yaml) and --reconstruction (the keys of "
    "simulate.reconstruction in twinsep/data/defaults.yaml)",
    input_files=_input_files,
    record=_record,
    # the reconstruction settings in use are in plan.json reconstruction.settings
    described=("catalog", "reconstruction_file", "reconstruction"),
)

__all__ = ["STAGE", "SimulateSettings", "default_catalog", "simulate_case"]
