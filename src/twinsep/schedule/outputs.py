"""Gantt chart (PNG, SVG), run sheet per person and checklist per phase."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twinsep.casefolder import write_text_atomic
from twinsep.labels import TWIN_COLOURS

_RGB = {
    "purple": tuple(c / 255 for c in TWIN_COLOURS["A"]),
    "orange": tuple(c / 255 for c in TWIN_COLOURS["B"]),
    None: (0.55, 0.55, 0.58),
}

#: Extra checklist items per phase kind.
CHECK_ITEMS: dict[str, list[str]] = {
    "induction": ["Colour-coded lines, monitors and drug trays for this twin",
                  "Blood products cross-matched and labelled for this twin"],
    "positioning": ["Both airways and all lines secured before turning",
                    "Navigation registered on both heads"],
    "exposure": ["Flap design from the reconstruction plan on the wall"],
    "craniotomy": ["Cutting guides and printed skull model in the room",
                   "Precordial Doppler / air-embolism watch on both twins"],
    "dural_opening": ["Sinus map from the plan on the wall"],
    "vessel_division": ["Temporary clips tried before division; monitoring stable for 5 min",
                        "Name the vessel and the twin who keeps the drainage aloud"],
    "brain_separation": ["Neuromonitoring baseline recorded for both twins"],
    "separation": ["Second table, scrub set and lights ready", "Time of separation called",
                   "Each team moves with its twin (purple / orange)"],
    "dural_repair": ["Graft material and sealant counted on this table"],
    "cranial_reconstruction": ["Bone plates and fixation counted on this table"],
    "scalp_closure": ["Swab and instrument count correct on this table"],
    "transfer_icu": ["Intensive-care bed, ventilator and colour-coded chart ready"],
}


def _hm(hours: float) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _bars(ax: Any, bars: list[tuple[float, float, float, float]], **style: Any) -> None:
    """Rectangles (left, width, y centre, height) as one collection (far fewer artists to
    draw than one ``barh`` patch per bar)."""
    from matplotlib.collections import PolyCollection

    if not bars:
        return
    verts = [
        [(x, y - h / 2), (x + w, y - h / 2), (x + w, y + h / 2), (x, y + h / 2)]
        for x, w, y, h in bars
    ]
    ax.add_collection(PolyCollection(verts, closed=True, **style))


def write_gantt(schedule: dict[str, Any], png: Path, svg: Path) -> None:
    """Gantt chart: one row per person, bars coloured by table (grey before separation)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    people = [p for p in schedule["people"] if p["on_duty_h"] > 0]
    rows = {p["person"]: i for i, p in enumerate(people)}
    total = schedule["operation"]["total_h"]
    fig_h = 2.0 + 0.28 * len(people)
    with matplotlib.rc_context({"svg.hashsalt": "twinsep-schedule", "font.size": 8}):
        fig, (ax0, ax) = plt.subplots(
            2, 1, figsize=(13, fig_h), sharex=True,
            gridspec_kw={"height_ratios": [1.6, max(4.0, 0.28 * len(people))]},
        )
        lanes = {None: 1, "purple": 2, "orange": 0}
        phase_bars: dict[Any, list] = {}
        for ph in schedule["phases"]:
            lane = lanes[ph["table"]] if ph["table"] else 1
            if ph["kind"] == "induction":
                lane = lanes[ph["twin"]]
            phase_bars.setdefault(ph["table"] or ph["twin"], []).append(
                (ph["start_h"], ph["end_h"] - ph["start_h"], lane, 0.8))
            if ph["end_h"] - ph["start_h"] >= 0.6:
                label = ph["kind"].replace("_", " ")
                if ph["kind"] == "vessel_division":
                    label = f"vessel {ph['vessel']['id']}"
                ax0.text((ph["start_h"] + ph["end_h"]) / 2, lane, label, ha="center",
                         va="center", fontsize=6, rotation=0, clip_on=True)
        for colour in (None, "purple", "orange"):
            _bars(ax0, phase_bars.get(colour, []), facecolors=[_RGB[colour]], alpha=0.35,
                  edgecolors="black", linewidths=0.4)
        ax0.set_ylim(-0.6, 2.6)
        ax0.set_yticks([0, 1, 2], ["orange", "joined", "purple"])
        ax0.set_title(
            f"Operating-room schedule, stage {schedule['operation']['stage']} "
            f"({total:.1f} h)"
        )
        duty: dict[tuple[Any, bool], list] = {}
        handover = []
        for a in schedule["assignments"]:
            y = rows[a["person"]]
            bar = (a["start_h"], a["end_h"] - a["start_h"], y)
            if a["kind"] == "handover":
                handover.append((*bar, 0.35))
            else:
                pre_twin = a["table"] is None and a["twin"] is not None
                duty.setdefault((a["table"] or a["twin"], pre_twin), []).append((*bar, 0.7))
        for (colour, pre_twin), bars in sorted(duty.items(), key=lambda kv: (str(kv[0][0]),
                                                                            kv[0][1])):
            _bars(ax, bars, facecolors=[_RGB[colour]], alpha=0.55 if pre_twin else 0.95,
                  edgecolors="white", linewidths=0.3, hatch="//" if pre_twin else None)
        _bars(ax, handover, facecolors="black", edgecolors="none", linewidths=0)
        ax.set_ylim(len(people) - 0.4, -0.6)  # first person on top
        ax.set_yticks(range(len(people)), [f"{p['person']} ({p['role']})" for p in people])
        sep = schedule["operation"].get("separation_h")
        for axis in (ax0, ax):
            if sep is not None:
                axis.axvline(sep, color="crimson", linestyle="--", linewidth=1)
            axis.set_xlim(0, total)
            axis.grid(axis="x", linewidth=0.3)
        ax.set_xlabel("hours from the start of anaesthesia (h)")
        ax.legend(
            handles=[
                Patch(color=_RGB["purple"], label="purple table / twin"),
                Patch(color=_RGB["orange"], label="orange table / twin"),
                Patch(color=_RGB[None], label="one team (before separation)"),
                Patch(color="black", label="hand-over"),
            ],
            loc="lower left", fontsize=7, ncols=4,
        )
        fig.tight_layout()
        png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, dpi=120, metadata={"Software": None})
        fig.savefig(svg, metadata={"Date": None, "Creator": None})
        plt.close(fig)


def runsheets_markdown(schedule: dict[str, Any]) -> str:
    """One run sheet per person: when, where, which role, which table."""
    lines = ["# Run sheets", "",
             "Times are hours from the start of anaesthesia (hh:mm). Hand-over = arrive for the "
             "briefing with the person you relieve.", ""]
    for p in schedule["people"]:
        mine = [a for a in schedule["assignments"] if a["person"] == p["person"]]
        colour = p["colour"] or "no colour (both twins)"
        lines += [f"## {p['person']} — {p['role']}", "",
                  f"Wears: **{colour}**. Skills: {', '.join(p['skills'])}. "
                  f"Window {_hm(p['earliest_h'])}–{_hm(p['latest_h'])}, "
                  f"max {p['max_continuous_h']:g} h at a stretch. "
                  f"On duty {p['on_duty_h']:.2f} h in {p['stints']} stint(s).", ""]
        if not mine:
            lines += ["Standby: not scheduled.", ""]
            continue
        lines += ["| from | to | what | phase | role | table |", "|---|---|---|---|---|---|"]
        for a in mine:
            what = "hand-over" + (f" from {a['from']}" if a.get("from") else "") \
                if a["kind"] == "handover" else "on duty"
            table = a["table"] or (f"({a['twin']} twin)" if a["twin"] else "shared")
            lines.append(f"| {_hm(a['start_h'])} | {_hm(a['end_h'])} | {what} | {a['phase']} "
                         f"| {a['role']} | {table} |")
        lines.append("")
    return "\n".join(lines)


def checklists_markdown(schedule: dict[str, Any]) -> str:
    """One checklist per phase: team, hand-overs, checks and contingencies."""
    lines = ["# Phase checklists", ""]
    for note in schedule.get("notes", []):
        lines.append(f"> {note}")
    lines.append("")
    for ph in schedule["phases"]:
        where = f"{ph['table']} table" if ph["table"] else (
            f"{ph['twin']} twin" if ph["twin"] else "one table")
        lines += [f"## {ph['name']} — {_hm(ph['start_h'])}–{_hm(ph['end_h'])} ({where})", "",
                  f"Duration {ph['duration_h']:.2f} h: {ph['basis']}.", ""]
        duty = [a for a in schedule["assignments"]
                if a["phase"] == ph["id"] and a["kind"] == "duty"]
        for need in ph["needs"]:
            names = sorted({a["person"] for a in duty
                            if a["role"] == need["role"] and a["twin"] == need["colour"]})
            col = f" ({need['colour']})" if need["colour"] else ""
            lines.append(f"- [ ] {need['role']}{col} ×{need['count']}: {', '.join(names)}")
        for a in schedule["assignments"]:
            if a["phase"] == ph["id"] and a["kind"] == "handover":
                src = f" relieving {a['from']}" if a.get("from") else ""
                lines.append(f"- [ ] {_hm(a['start_h'])} hand-over: {a['person']} "
                             f"({a['role']}){src}")
        for item in CHECK_ITEMS.get(ph["kind"], []):
            lines.append(f"- [ ] {item}")
        cons = [c for c in schedule.get("contingencies", []) if c["phase"] == ph["id"]]
        if cons:
            lines += ["", "Contingencies:", ""]
            for c in cons:
                who = ", ".join(f"{r['person']} ({r['role']})" for r in c["responders"]) or "—"
                stand = f"; standby: {', '.join(c['standby'])}" if c["standby"] else ""
                lines.append(f"- **{c['event']}** — {c['actions']}. Responds: {who}{stand}.")
        lines.append("")
    return "\n".join(lines)


def write_outputs(schedule: dict[str, Any], out: Path) -> dict[str, str]:
    """Write gantt.png, gantt.svg, runsheets.md and checklists.md into ``out``.

    Returns
    -------
    dict
        File name per output, relative to ``out``'s parent (the case folder).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_gantt(schedule, out / "gantt.png", out / "gantt.svg")
    write_text_atomic(out / "runsheets.md", runsheets_markdown(schedule))
    write_text_atomic(out / "checklists.md", checklists_markdown(schedule))
    base = out.name
    return {
        "gantt_png": f"{base}/gantt.png",
        "gantt_svg": f"{base}/gantt.svg",
        "runsheets": f"{base}/runsheets.md",
        "checklists": f"{base}/checklists.md",
    }
