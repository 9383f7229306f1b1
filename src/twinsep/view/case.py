"""The case layer of ``twinsep view``: reads ``models/`` and the scan, writes the
self-contained page ``viewer/index.html``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import Field

from twinsep.casefolder import Case, write_text_atomic
from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.progress import Progress
from twinsep.settings import Settings, default
from twinsep.stage import Stage, StageResult
from twinsep.view.build import (
    DEFAULT_WINDOW_HU,
    GLB_NAMES,
    ViewerResult,
    render_page,
    slice_volumes,
)

logger = logging.getLogger(__name__)


class ViewSettings(Settings):
    """Options of ``twinsep view`` that shape the page (defaults: ``view`` in defaults.yaml).

    Serving it (``--port``, ``--no-serve``, ``--open``) is the command's business, not the
    stage's: the page is the same whether it is served or opened as a file.
    """

    max_size: int = Field(default("view.max_size"), ge=16, le=1024,
                          description="Largest CT slice grid size per axis (voxels).")


def build_viewer(case_dir: str | Path, *, max_size: int = 256,
                 window_hu: tuple[float, float] = DEFAULT_WINDOW_HU,
                 slices: bool = True) -> ViewerResult:
    """Write ``CASE/viewer/index.html`` from ``models/`` and the scan.

    Needs ``models/manifest.json`` and the GLB it names (``model.glb``; made by
    ``twinsep models``), and for
    the slices ``scan.nii.gz`` with ``labels/twins.nii.gz`` (the owner overlay is left out
    when the owner map is missing). ``slices=False`` leaves the CT out altogether.
    """
    case = Case(Path(case_dir))
    manifest_path = case.models / "manifest.json"
    case.require(manifest_path, hint="run `twinsep models` first")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{manifest_path}: not readable JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{manifest_path}: not a models manifest (run `twinsep models`)")
    glb_name = manifest.get("glb")
    if not isinstance(glb_name, str) or "/" in glb_name or "\\" in glb_name:
        glb_name = next((n for n in GLB_NAMES if (case.models / n).exists()), GLB_NAMES[0])
    glb_path = case.models / glb_name
    case.require(glb_path, hint="run `twinsep models` first")
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not layers:
        raise InputError(f"{manifest_path}: no layers (run `twinsep models` again)")
    glb = glb_path.read_bytes()
    if glb[:4] != b"glTF":
        raise InputError(f"{glb_path}: not a binary glTF file")
    slice_data = None
    if slices:
        case.require(case.scan, hint="run `twinsep ingest` first")
        scan = Volume.read(case.scan)
        owner = Volume.read(case.twins) if case.twins.exists() else None
        slice_data = slice_volumes(scan, owner, max_size=max_size, window_hu=window_hu)
    title = "twinsep — case"  # never the folder name: it often is the patient's name
    text = render_page(glb=glb, manifest=manifest, slices=slice_data, title=title)
    out = case.viewer / "index.html"
    write_text_atomic(out, text)
    out.chmod(0o644)  # mkstemp makes it private; the page is meant to be opened and served
    return ViewerResult(
        index_html=out,
        size_bytes=len(text.encode("utf-8")),
        layers=[str(layer.get("name")) for layer in layers],
        slice_shape_kji=tuple(slice_data["shape_kji"]) if slice_data else (0, 0, 0),
        slice_spacing_mm=tuple(slice_data["spacing_mm"]) if slice_data else (0.0, 0.0, 0.0),
    )


def _run(case: Case, settings: ViewSettings, progress: Progress) -> StageResult:
    progress("CT slices and the 3-D scene into one page", 0.2)
    res = build_viewer(case.root, max_size=settings.max_size)
    logger.info("viewer page %.1f MB, %d layers", res.size_bytes / 1e6, len(res.layers))
    return StageResult(files=("viewer/index.html",), summary=f"{res.size_bytes / 1e6:.1f} MB",
                       data=res)


def _record(settings: ViewSettings) -> dict[str, Any]:
    return {"serve": False}


STAGE = Stage(
    name="view",
    title="3-D viewer",
    settings=ViewSettings,
    inputs=("models/manifest.json", "models/model.glb", "scan.nii.gz", "labels/twins.nii.gz"),
    outputs=("viewer/index.html",),
    run=_run,
    hint="run `twinsep view CASE --no-serve` to see the full message",
    record=_record,
    plan_name="viewer",
)

__all__ = ["STAGE", "ViewSettings", "build_viewer"]
