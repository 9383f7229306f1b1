"""Build the case report from plan.json, case.json, timings.json and the figures.

The HTML is one self-contained file: the figures are embedded as ``data:`` URIs and the
style sheet is inline. The PDF is the same HTML laid out by WeasyPrint. Every section has
an ``id`` (see :data:`CONJOINED_SECTIONS`). No patient name or ID appears unless
``keep_phi`` (and then only what ``twinsep ingest --keep-phi`` kept in case.json).

The 3-D figure (``figures/render_3d.png``) is drawn with matplotlib (Agg): marching-cubes
surfaces of each twin's head and brain and of the shared vessels, on a grid of about
3 mm (each surface extracted once, the shared vessels found in the bounding box of the
vessels), in about a second; deterministic. The PDF variant of the HTML embeds the PNG
figures as JPEG, which WeasyPrint copies into the PDF instead of recompressing.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twinsep import __version__
from twinsep.casefolder import Case, load_plan, load_timings, read_json
from twinsep.image import bounding_box
from twinsep.labels import TWIN_COLOURS
from twinsep.mesh import iso_surface

#: Section ids of the report of a conjoined pair, in order.
CONJOINED_SECTIONS: tuple[str, ...] = (
    "summary",
    "classification",
    "shared",
    "figures",
    "separation",
    "stages",
    "reconstruction",
    "schedule",
    "pipeline",
    "methods",
    "provenance",
)
#: Section ids of the short report when the heads do not touch.
NOT_CONJOINED_SECTIONS: tuple[str, ...] = (
    "summary", "identity", "figures", "pipeline", "methods", "provenance",
)

_RENDER_GRID_MM = 3.0

_CSS = """
@page { size: A4; margin: 14mm 12mm 16mm 12mm;
        @bottom-center { content: "twinsep report - page " counter(page) " of " counter(pages);
                         font-size: 8pt; color: #666; } }
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 10pt;
       color: #111; max-width: 1100px; margin: 0 auto; padding: 0 8px; }
h1 { font-size: 18pt; border-bottom: 3px solid #8000a0; padding-bottom: 4px; }
h2 { font-size: 13pt; margin-top: 18px; border-bottom: 1px solid #ccc;
     break-after: avoid; }
h3 { font-size: 11pt; break-after: avoid; }
table { border-collapse: collapse; margin: 6px 0 10px 0; font-size: 8.5pt; }
th, td { border: 1px solid #bbb; padding: 2px 5px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.chosen td { background: #fff3cc; font-weight: bold; }
img { max-width: 100%; height: auto; }
figure { margin: 8px 0; break-inside: avoid; }
figcaption { font-size: 8.5pt; color: #444; }
.purple { color: #8000a0; font-weight: bold; }
.orange { color: #d07000; font-weight: bold; }
.warn { color: #a00; }
.note { color: #555; font-size: 9pt; }
code { font-size: 8pt; }
section { margin-bottom: 10px; }
"""


@dataclass
class ReportResult:
    """What :func:`build_report` wrote."""

    html: Path
    pdf: Path | None
    sections: tuple[str, ...]
    note: str = ""


# --- small HTML helpers ----------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return _e(value)


def _table(headers: list[str], rows: list[list[Any]], *, classes: list[str] | None = None,
           digits: int = 1) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        cells = []
        for v in row:
            if isinstance(v, int | float) and not isinstance(v, bool):
                cells.append(f'<td class="num">{_num(v, digits)}</td>')
            elif isinstance(v, _Raw):
                cells.append(f"<td>{v}</td>")
            else:
                cells.append(f"<td>{_num(v) if isinstance(v, bool) or v is None else _e(v)}</td>")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class _Raw(str):
    """HTML that is already escaped."""


def _jpeg(path: Path) -> bytes:
    """A PNG figure as a JPEG on white (quality 92, no chroma subsampling).

    For the PDF only: WeasyPrint copies a JPEG into the PDF as it is, whereas it decodes
    every PNG, splits off the alpha channel and compresses both again.
    """
    from io import BytesIO

    from PIL import Image

    with Image.open(path) as im:
        im.load()
        rgb = Image.new("RGB", im.size, "white")
        rgb.paste(im.convert("RGB"), mask=im.getchannel("A") if "A" in im.getbands() else None)
    buf = BytesIO()
    rgb.save(buf, format="JPEG", quality=92, subsampling=0)
    return buf.getvalue()


def _img(path: Path, alt: str, caption: str, *, pdf: bool = False) -> str:
    if not path.is_file():
        return f'<p class="note">({_e(alt)}: {_e(path.name)} not found)</p>'
    if path.suffix == ".svg":
        mime, raw = "image/svg+xml", path.read_bytes()
    elif pdf and path.suffix == ".png":
        mime, raw = "image/jpeg", _jpeg(path)
    else:
        mime, raw = "image/png", path.read_bytes()
    data = base64.b64encode(raw).decode("ascii")
    return (f'<figure><img src="data:{mime};base64,{data}" alt="{_e(alt)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _code(value: Any) -> str:
    """``<code>`` with a line-break opportunity every 16 characters (hashes, paths).

    Cheaper to lay out than ``word-break: break-all``, with which WeasyPrint measures the
    narrowest width of a table cell one character at a time.
    """
    text = str(value)
    return "<code>" + "<wbr>".join(_e(text[i:i + 16]) for i in range(0, len(text), 16)) + "</code>"


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{_e(title)}</h2>\n{body}\n</section>\n'


def _twin(name: str) -> str:
    colour = {"A": "purple", "B": "orange"}.get(name, "")
    return f'<span class="{colour}">twin {_e(name)} ({colour})</span>' if colour else _e(name)


# --- 3-D render --------------------------------------------------------------------------------
def shared_vessel_mask(tissues: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Vessel voxels (tissue 5) of the 26-connected vessel components that hold voxels of
    both twins in ``owner`` (1 = A, 2 = B).

    Labels only the bounding box of the vessels and counts the owners of the vessel voxels
    per component, so it costs little more than one pass over the volume.
    """
    from scipy import ndimage as ndi

    vessel = tissues == 5
    out = np.zeros(tissues.shape, bool)
    if not vessel.any():
        return out
    box_t = bounding_box(vessel)
    sub = vessel[box_t]
    lab, n = ndi.label(sub, structure=np.ones((3, 3, 3), bool))
    comp = lab[sub]
    own = np.asarray(owner)[box_t][sub]
    has_a = np.bincount(comp[own == 1], minlength=n + 1) > 0
    has_b = np.bincount(comp[own == 2], minlength=n + 1) > 0
    keep = has_a & has_b
    keep[0] = False
    out[box_t] = keep[lab]
    return out


def _surface(mask: np.ndarray | Callable[[int], np.ndarray], step: int, affine: np.ndarray,
             max_faces: int = 12000):
    """World-mm triangles of a marching-cubes surface of ``mask`` (decimated by ``step``).

    ``mask`` may be a function of the step giving ``mask[::step, ::step, ::step]``, so that
    the full-resolution mask is never made.
    """
    def at(k: int) -> np.ndarray:
        return mask(k) if callable(mask) else mask[::k, ::k, ::k]

    while True:  # keep it light: a coarser grid until the surface is small enough
        m = np.pad(at(step), 1).astype(np.float32)
        if m.sum() < 8:
            return None
        verts, faces = iso_surface(m, 0.5, allow_degenerate=True)
        if len(faces) <= max_faces or step >= 8:
            break
        step += 1
    kji = (verts - 1.0) * step
    ijk1 = np.c_[kji[:, ::-1], np.ones(len(kji))]
    world = ijk1 @ affine.T
    return world[:, :3][faces]


def render_3d(case: Case, path: Path | None = None) -> Path:
    """Draw the 3-D figure of the twins and the shared vessels (PNG, deterministic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    from twinsep.image import Volume
    from twinsep.report.plot3d import frame_axes, save_png

    path = Path(path) if path is not None else case.figures / "render_3d.png"
    tissues = Volume.read(case.tissues)
    owner = Volume.read(case.twins)
    ident_path = case.labels / "twins-identity.nii.gz"
    ident = Volume.read(ident_path).array if ident_path.exists() else owner.array
    t = np.asarray(tissues.array)
    o = np.asarray(owner.array)
    step = max(1, round(_RENDER_GRID_MM / min(tissues.spacing)))
    affine = tissues.affine
    shared = shared_vessel_mask(t, np.asarray(ident))
    colours = {k: np.array(v) / 255.0 for k, v in TWIN_COLOURS.items()}
    def part(tissue: Callable[[np.ndarray], np.ndarray], twin: int):
        # the mask on the render grid only: a fraction 1/step**3 of the voxels
        return lambda k: tissue(t[::k, ::k, ::k]) & (o[::k, ::k, ::k] == twin)

    def head(x: np.ndarray) -> np.ndarray:
        return x > 0

    def brain(x: np.ndarray) -> np.ndarray:
        return x == 4

    # each surface once (the brains appear in two panels)
    tri = {
        "head_a": _surface(part(head, 1), step, affine),
        "head_b": _surface(part(head, 2), step, affine),
        "brain_a": _surface(part(brain, 1), step, affine),
        "brain_b": _surface(part(brain, 2), step, affine),
        "shared": _surface(shared, step, affine),
    }
    panels = [
        ("twin A (purple)", [("head_a", colours["A"], 0.35),
                             ("brain_a", colours["A"] * 0.6, 0.9)]),
        ("twin B (orange)", [("head_b", colours["B"], 0.35),
                             ("brain_b", colours["B"] * 0.7, 0.9)]),
        ("shared vessels (red) and brains", [("brain_a", colours["A"], 0.12),
                                             ("brain_b", colours["B"], 0.12),
                                             ("shared", colours["shared"], 1.0)]),
    ]
    pts = [m.reshape(-1, 3) for m in tri.values() if m is not None]
    if pts:
        lo = np.min([p.min(0) for p in pts], axis=0)
        hi = np.max([p.max(0) for p in pts], axis=0)
    else:
        lo, hi = np.zeros(3), np.ones(3)
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 + 5
    fig = plt.figure(figsize=(13.5, 4.8), dpi=90)
    # fixed margins: tight_layout would draw the three 3-D scenes once more to measure them
    fig.subplots_adjust(left=0.0, right=0.97, bottom=0.03, top=0.93, wspace=0.08)
    for i, (title, layers) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1, projection="3d")
        for key, colour, alpha in layers:
            if tri[key] is not None:
                ax.add_collection3d(Poly3DCollection(tri[key], facecolor=colour, alpha=alpha,
                                                     edgecolor="none", linewidth=0))
        if i == 2 and not shared.any():
            ax.text2D(0.5, 0.05, "no shared vessels", transform=ax.transAxes, ha="center")
        frame_axes(ax, centre, half, 15, -60)
        ax.set_title(title, fontsize=10)
    return save_png(fig, path)


# --- sections ----------------------------------------------------------------------------------
def _summary(plan: dict, info: dict, keep_phi: bool) -> str:
    g = info.get("geometry", {})
    src = info.get("source", {})
    rows: list[list[Any]] = []
    if keep_phi and info.get("phi"):
        for k, v in sorted(info["phi"].items()):
            rows.append([f"patient: {k}", str(v)])
    rows += [
        ["scan", f"{src.get('format', '?')}, {src.get('modality') or 'CT'}, "
                 f"{'x'.join(str(n) for n in g.get('size_ijk', []))} voxels of "
                 f"{'x'.join(f'{s:g}' for s in g.get('spacing_mm', []))} mm"],
        ["conjoined", _num(plan.get("conjoined"))],
    ]
    c = plan.get("classification")
    if c:
        rows.append(["Stone & Goodrich", f"{c['fusion']} {c['orientation']}"
                     + (f" type {c['type']}" if c.get("type") else "")])
    sep = plan.get("separation")
    if sep:
        st = sep.get("staging", {}).get("stages", [])
        rows.append(["chosen cut", f"{sep.get('chosen')}: {sep.get('cut_area_total_cm2', 0):.1f}"
                     f" cm², {len(sep.get('crossing_vessels', []))} crossing vessel(s), "
                     f"{len(st)} operation(s)"])
    sch = plan.get("schedule")
    if sch:
        rows.append(["operation", f"{sch['operation']['total_h']:.1f} h "
                     f"(stage {sch['operation']['stage']})"])
    phi = ("" if keep_phi else '<p class="note">No patient name or ID is included '
           "(twinsep keeps them out unless <code>--keep-phi</code>).</p>")
    return _table(["", ""], rows) + phi


def _classification(plan: dict) -> str:
    c = plan["classification"]
    rows = [["fusion", c["fusion"]], ["orientation", c["orientation"]],
            ["type", c.get("type") or "–"],
            ["axial rotation (deg)", c.get("axial_rotation_deg")],
            ["long-axis angle (deg)", c.get("long_axis_angle_deg")]]
    method = c.get("method") or {}
    mrows = [[k, v] for k, v in sorted(method.items())]
    return (_table(["", "value"], rows)
            + ("<h3>How</h3>" + _table(["quantity", "method"], mrows) if mrows else ""))


def _shared(plan: dict) -> str:
    s = plan["shared"]
    rows = [["brain contact area (cm²)", s["brain_contact_area_cm2"]],
            ["closest brain distance (mm)", s["brain_min_distance_mm"]],
            ["junction area (cm²)", s["junction_area_cm2"]]]
    out = _table(["", ""], rows)
    if (plan.get("segmentation") or {}).get("source") == "ct":
        out += ('<p class="note">Brain contact from a segmented CT: thin CSF sheets between '
                "the brains are found across the junction in the scan itself, but sheets under "
                "about 1 mm are beyond it, so brain surfaces that close count as touching "
                "(on the phantoms: -4 % at 2 mm, +22 % at 1 mm, +33 % at 0.5 mm; "
                "docs/methods.md).</p>")
    vols = s["tissue_volumes_ml"]
    tissues = ["scalp", "bone", "dura", "brain", "vessel"]
    out += "<h3>Tissue volumes (ml)</h3>" + _table(
        ["twin", *tissues], [[_Raw(_twin(k)), *[vols[k].get(t) for t in tissues]]
                              for k in ("A", "B")])
    vrows = [[v["id"], v["volume_ml"], v["length_mm"], v["min_diameter_mm"],
              v["max_diameter_mm"], v["share_a"], v["share_b"], v.get("dominant", "")]
             for v in s["vessels"]]
    out += "<h3>Shared vessels</h3>"
    out += (_table(["id", "volume ml", "length mm", "min Ø mm", "max Ø mm", "share A",
                    "share B", "dominant"], vrows, digits=2)
            if vrows else "<p>No vessel runs from one twin into the other.</p>")
    return out


def _figures(case: Case, plan: dict, conjoined: bool, pdf: bool = False) -> str:
    out = []
    figs = dict(plan.get("figures") or {})
    if "junction" in figs:
        out.append(_img(case.root / figs.pop("junction"), "junction slices",
                        "Axial, coronal and sagittal slices through the junction: twin A "
                        "purple, twin B orange, shared vessels red.", pdf=pdf))
    if conjoined:
        out.append(_img(case.figures / "render_3d.png", "3-D render",
                        "3-D surfaces (about 3 mm grid) of each twin's head and brain and "
                        "of the shared vessels, after separation.", pdf=pdf))
    for name, rel in sorted(figs.items()):
        out.append(_img(case.root / rel, name, name, pdf=pdf))
    return "".join(out) or "<p>No figures.</p>"


def _separation(plan: dict) -> str:
    s = plan["separation"]
    rows, classes = [], []
    for a in s["alternatives"]:
        chosen = a["key"] == s.get("chosen")
        classes.append("chosen" if chosen else "")
        if not a.get("available"):
            rows.append([a["letter"], a["title"], "not available: " + a.get("reason", ""),
                         None, None, None, None])
            continue
        rows.append([a["letter"] + (" (chosen)" if chosen else ""), a["title"],
                     a["risk"], a["cut_area_total_cm2"], a["cut_area_cm2"].get("brain"),
                     a["vessels_cut"], a["vessel_cross_section_cut_mm2"]])
    out = _table(["", "alternative", "risk", "cut area cm²", "brain cm²", "vessels cut",
                  "vessel mm² cut"], rows, classes=classes)
    area = s.get("cut_area_cm2", {})
    out += "<h3>The chosen cut</h3>" + _table(
        ["tissue", "cut area cm²"], [[k, v] for k, v in sorted(area.items())], digits=2)
    cv = [[v["id"], v.get("kept_by", ""), v.get("cross_section_mm2"),
           v.get("equivalent_diameter_mm"), ", ".join(f"{x:.0f}" for x in v.get("world_mm", []))]
          for v in s.get("crossing_vessels", [])]
    if cv:
        out += "<h3>Vessels crossing the cut</h3>" + _table(
            ["id", "kept by", "cross-section mm²", "Ø mm", "where (x, y, z mm)"], cv)
    return out


def _stages(plan: dict) -> str:
    st = plan["separation"].get("staging", {})
    rows = []
    for s in st.get("stages", []):
        div = ", ".join(f"vessel {d['id']} (kept by {d.get('kept_by', '?')})"
                        for d in s.get("divide", [])) or "–"
        rows.append([s["stage"], div, s.get("divided_cross_section_mm2"),
                     s.get("share_of_crossing_cross_section"), _num(s.get("final_separation")),
                     s.get("note", "")])
    out = _table(["operation", "divide", "mm² divided", "share", "final", "note"], rows,
                 digits=2)
    out += (f'<p class="note">Staging: {_e(st.get("mode", ""))}, at most '
            f"{_num(st.get('max_share_per_stage'), 2)} of the crossing venous cross-section "
            "per operation.</p>")
    return out


def _reconstruction(case: Case, plan: dict, pdf: bool = False) -> str:
    r = plan["reconstruction"]
    twins = r.get("twins", {})
    rows = [[_Raw(_twin(k)), t.get("scalp_defect_cm2"), t.get("bone_defect_cm2"),
             t.get("bone_opening_cm2"), t.get("dura_defect_cm2"), t.get("defect_length_cm"),
             t.get("defect_width_cm")]
            for k, t in sorted(twins.items())]
    out = "<h3>Defects after separation</h3>" + _table(
        ["twin", "scalp cm²", "bone to rebuild cm²", "skull opening cm²", "dura cm²",
         "length cm", "width cm"], rows)
    fig = case.figures / "reconstruction.png"
    if fig.exists():
        out += _img(fig, "reconstruction", "Each child after the cut (the twins moved "
                    f"{r.get('separation_distance_mm', 0):g} mm apart): its skull, the cranial "
                    "implant light blue and the tissue expanders pale green at full fill. In "
                    "the viewer (View, Separated) with the head and the wound too.", pdf=pdf)
    scalp = r.get("scalp", {})
    erows = []
    for k, lst in sorted(scalp.get("expanders", {}).items()):
        for e in lst:
            sch = e.get("schedule", {})
            erows.append([_Raw(_twin(k)), e.get("index"), e.get("product"), e.get("shape"),
                          f"{e.get('length_cm', 0):g} x {e.get('width_cm', 0):g} cm",
                          e.get("fill_volume_ml"), e.get("expected_gain_cm2"),
                          f"{sch.get('n_fills', '?')} fills of {sch.get('fill_ml', 0):.1f} ml, "
                          f"every {sch.get('interval_days', '?')} d from day "
                          f"{sch.get('first_fill_day', '?')} ({sch.get('weeks', '?')} weeks)"])
    out += "<h3>Tissue expanders and their schedule</h3>" + (_table(
        ["twin", "#", "product", "shape", "size", "fill ml", "gain cm²", "inflation schedule"],
        erows) if erows else "<p>No expanders planned.</p>")
    st = scalp.get("twins", {})
    if st:
        out += _table(["twin", "expanders", "expected gain cm²", "skin missing cm²",
                       "covers", "weeks"],
                      [[_Raw(_twin(k)), v.get("n_expanders"), v.get("expected_gain_cm2"),
                        v.get("skin_missing_cm2"), _num(v.get("gain_covers_skin")),
                        v.get("weeks")] for k, v in sorted(st.items())])
        out += "<h3>Aya et al. 2014 rule</h3>" + _table(
            ["twin", "fill ml", "needed ml (> 7 ml/cm²)", "expanded width cm",
             "needed cm (> 2.5 × defect)", "met"],
            [[_Raw(_twin(k)), v.get("total_volume_ml"), v["aya"].get("required_volume_ml"),
              v.get("expanded_width_cm"), v["aya"].get("required_width_cm"),
              _num(v["aya"].get("satisfied"))] for k, v in sorted(st.items()) if "aya" in v])
    cr = r.get("cranium", {}).get("twins", {})
    irows = [[_Raw(_twin(k)), v["implant"].get("area_cm2"), v["implant"].get("volume_ml"),
              v["implant"].get("thickness_mm"), _num(v.get("closure", {}).get("closed"))]
             for k, v in sorted(cr.items()) if "implant" in v]
    if irows:
        out += "<h3>Cranial implant</h3>" + _table(
            ["twin", "area cm²", "volume ml", "thickness mm", "skull closed"], irows)
    warns = r.get("warnings", [])
    if warns:
        out += "<ul>" + "".join(f'<li class="warn">{_e(w)}</li>' for w in warns) + "</ul>"
    return out


def _schedule(case: Case, plan: dict, pdf: bool = False) -> str:
    sch = plan.get("schedule")
    if not sch:
        return ("<p>No operating-room schedule: run <code>twinsep schedule CASE --roster "
                "FILE</code> (or <code>twinsep plan ... --roster FILE</code>).</p>")
    op = sch["operation"]
    out = (f"<p>Stage {op['stage']} of {op['n_stages']}: {op['total_h']:.1f} h in all, "
           f"separation at {op['separation_h']:.1f} h; {len(sch['assignments'])} assignments "
           f"({_e(sch['solver']['engine'])}, {_e(sch['solver']['status'].lower())}).</p>")
    gantt = (sch.get("files") or {}).get("gantt_png")
    if gantt:
        out += _img(case.root / gantt, "Gantt chart",
                    "Who does what, hour by hour (purple and orange tables after separation).",
                    pdf=pdf)
    rows = [[p["name"], p.get("twin") or p.get("table") or "", p["start_h"], p["end_h"],
             p["duration_h"]] for p in sch.get("phases", [])]
    out += "<h3>Phases</h3>" + _table(["phase", "twin / table", "start h", "end h", "hours"],
                                      rows)
    return out


def _growth(case: Case, plan: dict, pdf: bool = False) -> str:
    """The comparison with an earlier scan (``twinsep compare``), when there is one."""
    from twinsep.compare import report_rows

    g = plan["growth"]
    rows = [[label, _num(e.get("earlier"), 2), _num(e.get("later"), 2),
             _num(e.get("change"), 2), _num(e.get("change_per_month"), 2)]
            for label, e in report_rows(g)]
    months = g.get("months")
    head = (f"<p>Interval {_num(months)} months ({_e(g.get('months_source'))}).</p>"
            if months else f"<p>Interval unknown ({_e(g.get('months_source'))}): "
            "changes per month are not given.</p>")
    err = g.get("registration", {}).get("brain_centroid_error_mm", {})
    tail = (f"<p>Registration of the later scan to the earlier one (rigid then affine, "
            f"mutual information): brain centroid error A {_num(err.get('A'))} mm, "
            f"B {_num(err.get('B'))} mm; twins matched by position"
            f"{' (swapped between the scans)' if g.get('twins_swapped') else ''}.</p>")
    warn = "".join(f'<p class="warn">{_e(w)}</p>' for w in g.get("warnings", []))
    fig = plan.get("figures", {}).get("growth")
    img = (_img(case.root / fig, "growth", "The junction then and now; shared vessels red.",
                pdf=pdf) if fig and (case.root / fig).exists() else "")
    return head + _table(["measure", "earlier", "later", "change", "per month"], rows) + (
        tail + warn + img)


def _pipeline(timings: dict) -> str:
    stages = timings.get("stages", {})
    if not stages:
        return "<p>No timings (the stages were run one by one).</p>"
    rows = []
    for name in timings.get("order") or sorted(stages):
        t = stages.get(name)
        if t is None:
            continue
        rows.append([name, t.get("title", ""), t.get("status", ""),
                     t.get("last_run_seconds"), t.get("note", "")])
    out = _table(["stage", "what", "last run", "seconds", "note"], rows)
    out += (f'<p class="note">Timings live beside plan.json in <code>timings.json</code> '
            f"(plan.json holds no times, so that it is byte-identical for the same input and "
            f"settings). Last run: {timings.get('total_seconds', 0):.1f} s, peak memory "
            f"{timings.get('peak_rss_mb', 0):.0f} MB, {timings.get('cpu_count')} CPU.</p>")
    return out


_METHODS = [
    ("Tissues", "Thresholds in Hounsfield units with morphological clean-up and a vesselness "
     "filter for contrast-filled sinuses (or an imported label map).",
     "Needs a contrast CT; thin or partial-volume bone and small vessels (< 2 voxels) are "
     "missed or merged; check the labels before planning."),
    ("Twin identity", "Two head centres from the distance transform; the brain split by "
     "marker watershed; other tissue to the nearest brain.",
     "The interface inside fused brain is a model, not a visible boundary; give seeds when "
     "the automatic split is wrong."),
    ("Classification", "Stone & Goodrich from shared venous structures, brain long axes "
     "and the axial rotation between the twins.",
     "Angles depend on the brain shape match; the type is a guide for planning, not a "
     "diagnosis."),
    ("Separation", "Minimum s-t cut of a risk-weighted voxel graph (tissue cost per mm², "
     "vessel cost by cross-section), coarse to fine; alternatives keep the shared sinus "
     "with one twin; vessels staged by cross-section.",
     "Costs are a model (risk.yaml), not outcome data; perfusion and collateral drainage are "
     "not simulated; the cut is limited to the voxel grid."),
    ("Reconstruction", "The twins moved apart; defects measured on the cut; expanders from "
     "a catalogue with gain and inflation schedule; implant fitted to a sphere.",
     "Skin gain efficiency is taken from the literature; soft-tissue mechanics are not "
     "modelled."),
    ("Schedule", "Constraint programming (OR-Tools CP-SAT) with role, skill, duty and rest "
     "constraints.",
     "Phase durations are estimates; the schedule assumes the roster is available."),
]


def _methods(plan: dict) -> str:
    rows = [[a, b, c] for a, b, c in _METHODS]
    out = _table(["stage", "method", "limits"], rows)
    sep = plan.get("separation", {})
    if sep.get("method"):
        out += f'<p class="note">Separation: {_e(sep["method"])}</p>'
    out += ('<p class="note">twinsep is a planning aid for a multidisciplinary team; every '
            "result must be checked by the surgeons on the images. Measured accuracy on "
            "phantoms: docs/methods.md.</p>")
    return out


def _provenance(plan: dict, info: dict) -> str:
    case = plan.get("case", {})
    rows = [["twinsep", plan.get("twinsep_version", __version__)],
            ["plan.json schema", plan.get("schema_version", "")]]
    for k, v in sorted((case.get("inputs") or {}).items()):
        rows.append([k, _Raw(_code(v))])
    hashes = info.get("hashes", {})
    for k in ("input_sha256", "scan_array_sha256"):
        if k in hashes:
            rows.append([f"case.json {k}", _Raw(_code(hashes[k]))])
    seg = plan.get("segmentation", {})
    if seg.get("output_sha256"):
        rows.append(["tissue labels sha256", _Raw(_code(seg["output_sha256"]))])
    sep = plan.get("separation", {})
    if sep.get("owner_map_sha256"):
        rows.append(["owner map sha256", _Raw(_code(sep["owner_map_sha256"]))])
    out = _table(["", ""], rows)
    settings = case.get("settings") or {}
    if settings:
        srows = [[k, ", ".join(f"{a}={b}" for a, b in sorted(v.items())) or "defaults"]
                 for k, v in settings.items()]
        out += "<h3>Settings</h3>" + _table(["stage", "settings"], srows)
    if seg.get("settings"):
        out += ('<p class="note">Segmentation settings: '
                + _e(", ".join(f"{k}={v}" for k, v in sorted(seg["settings"].items())))
                + "</p>")
    return out


# --- the report ------------------------------------------------------------------------------
def render_html(
    case: Case, *, keep_phi: bool = False, pdf: bool = False
) -> tuple[str, tuple[str, ...]]:
    """The report as one HTML string, and the ids of its sections.

    ``pdf``: the variant that WeasyPrint lays out, with the PNG figures embedded as JPEG.
    """
    case = Case(case.root if isinstance(case, Case) else case)
    plan = load_plan(case)
    info = read_json(case.case_json) if case.case_json.exists() else {}
    timings = load_timings(case)
    conjoined = plan.get("conjoined") is True and "classification" in plan
    parts: list[str] = []
    parts.append(_section("summary", "Case summary", _summary(plan, info, keep_phi)))
    if conjoined:
        parts.append(_section("classification", "Classification", _classification(plan)))
        parts.append(_section("shared", "Shared anatomy", _shared(plan)))
        parts.append(_section("figures", "Figures", _figures(case, plan, True, pdf)))
        if "separation" in plan:
            parts.append(_section("separation", "Separation: alternatives and the chosen cut",
                                  _separation(plan)))
            parts.append(_section("stages", "Stages", _stages(plan)))
        if "reconstruction" in plan:
            parts.append(_section("reconstruction", "Reconstruction",
                                  _reconstruction(case, plan, pdf)))
        parts.append(_section("schedule", "Operating-room timeline", _schedule(case, plan, pdf)))
        if "growth" in plan:
            parts.append(_section("growth", "Growth since the earlier scan",
                                  _growth(case, plan, pdf)))
    else:
        if plan.get("conjoined") is False:
            dist = plan.get("closest_distance_mm")
            body = (f"<p><strong>Not conjoined:</strong> the two heads do not touch "
                    f"(closest distance {_num(dist)} mm). Nothing to separate; the plan "
                    "stopped after <code>identify</code>.</p>")
        else:
            body = ("<p>Twin identity has not been run yet "
                    "(<code>twinsep identify CASE</code>).</p>")
        parts.append(_section("identity", "Twin identity", body))
        parts.append(_section("figures", "Figures", _figures(case, plan, False, pdf)))
    parts.append(_section("pipeline", "Pipeline and timings", _pipeline(timings)))
    parts.append(_section("methods", "Methods and their limits", _methods(plan)))
    parts.append(_section("provenance", "Software, settings and input hashes",
                          _provenance(plan, info)))
    title = "twinsep craniopagus plan"
    doc = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
           f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
           f"<h1>{_e(title)}</h1>\n"
           f'<p class="note">twinsep {_e(__version__)} — twin A '
           f'<span class="purple">purple</span>, twin B <span class="orange">orange</span>; '
           f"world coordinates in mm (LPS).</p>\n" + "".join(parts) + "</body></html>\n")
    ids = tuple(p.split('"', 2)[1] for p in parts)
    return doc, ids
