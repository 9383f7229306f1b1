"""The separated twins as model layers: each child after the cut, with its reconstruction.

``twinsep simulate`` writes, per twin X, ``models/twin_X_{head,skull,defect,implant}.stl``
and ``twin_X_expander_N.stl`` in the *separated frame* (world LPS mm plus the twin's
``translation_mm``: the twins moved apart along the separation normal) and names them in
plan.json ``reconstruction``. This module turns them into :class:`~twinsep.models.scene.Layer`
objects of stage ``'separated'`` for the GLB and the viewer:

=====================  ==========================================  =========
layer                  what                                        opacity
=====================  ==========================================  =========
separated/X/head       the child's outer surface (its scalp)       0.35
separated/X/skull      its own bone                                1
separated/X/implant    the cranial implant across the bone defect  1
separated/X/expander-N an inflated tissue expander on healthy scalp 0.85
separated/X/wound      the cut faces of the head (the open wound)  0.9
=====================  ==========================================  =========

Display meshes are decimated to :data:`SEPARATED_MAX_FACES` triangles, closed where the
decimation keeps them so (a thin implant shell may open: these are for display; the STL files
keep every triangle).
"""

from __future__ import annotations

from pathlib import Path

from twinsep.colours import EXPANDER_RGB, IMPLANT_RGB, WOUND_RGB, tissue_colour
from twinsep.models.scene import Layer

#: Triangles of each separated display mesh in the GLB, per layer kind (the page of the
#: viewer carries them all).
SEPARATED_MAX_FACES = {"head": 30_000, "skull": 30_000, "implant": 15_000, "wound": 8_000,
                       "expander": 4_000}

#: (kind in plan.json ``models``, layer kind, opacity, closed)
_KINDS = (("head", "head", 0.35, True), ("skull", "skull", 1.0, True),
          ("implant", "implant", 1.0, True), ("defect", "wound", 0.9, False))


def _colour(twin: str, kind: str):
    return {"head": tissue_colour(twin, "scalp"), "skull": tissue_colour(twin, "bone"),
            "implant": IMPLANT_RGB, "expander": EXPANDER_RGB, "wound": WOUND_RGB}[kind]


def _load(models_dir: Path, rel: str, max_faces: int, notes: list[str]):
    """The mesh of ``rel`` (a plan.json path ``models/...``), decimated; None if missing."""
    import trimesh

    from twinsep.mesh import decimate

    name = rel.split("/", 1)[1] if rel.startswith("models/") else rel
    path = models_dir / name
    if not path.is_file():
        notes.append(f"separated: {rel} is missing (run `twinsep simulate` again)")
        return None, name
    mesh = trimesh.load(path, file_type="stl", force="mesh", process=True)
    if len(mesh.faces) == 0:
        return None, name
    failed: list[str] = []
    v, f = decimate(mesh.vertices, mesh.faces, max_faces, failed)
    if failed:  # a thin shell (the implant) may not stay closed: display only, so allow it
        v, f = decimate(mesh.vertices, mesh.faces, max_faces, closed=False)
    return trimesh.Trimesh(v, f, process=False), name


def reconstruction_layers(models_dir: Path, reconstruction: dict | None, *,
                          max_faces: int | None = None,
                          notes: list[str] | None = None,
                          kinds: set[str] | None = None) -> list[Layer]:
    """Layers of the separated twins from plan.json ``reconstruction`` (see the module
    docstring); empty when the case has no reconstruction. ``max_faces``: one triangle
    budget for every mesh instead of :data:`SEPARATED_MAX_FACES`; ``kinds``: only these
    layer kinds (``head``, ``skull``, ``implant``, ``wound``, ``expander``), the others'
    meshes not even read."""
    notes = notes if notes is not None else []
    if not reconstruction:
        return []
    out: list[Layer] = []
    twins = reconstruction.get("twins") or {}
    expanders = (reconstruction.get("scalp") or {}).get("expanders") or {}
    for twin in sorted(twins):
        files = twins[twin].get("models") or {}
        items = [(kind, files.get(key), op, closed) for key, kind, op, closed in _KINDS]
        items += [(f"expander-{e['index']}", e.get("model"), 0.85, True)
                  for e in expanders.get(twin, [])]
        for kind, rel, opacity, closed in items:
            if not rel:
                continue
            base = "expander" if kind.startswith("expander") else kind
            if kinds is not None and base not in kinds:
                continue
            budget = SEPARATED_MAX_FACES[base] if max_faces is None else max_faces
            mesh, name = _load(models_dir, rel, budget, notes)
            if mesh is None:
                continue
            out.append(Layer(f"separated/{twin}/{kind}", twin, base, _colour(twin, base),
                             opacity, None, closed=closed, mesh=mesh, stage="separated",
                             source_stl=name))
    return out
