"""Contingencies per phase and who responds, from the produced assignments."""

from __future__ import annotations

from typing import Any

_ANAES = ("anaesthetist", "anaesthetic_nurse")

#: Per phase kind: (event, roles that respond, per_colour, first actions).
#: ``per_colour``: one entry per twin, responders restricted to that twin's colour.
TEMPLATES: dict[str, list[tuple[str, tuple[str, ...], bool, str]]] = {
    "induction": [
        ("airway or line complication in the {colour} twin", _ANAES, True,
         "call the second anaesthetist; the other twin's team keeps its twin stable"),
    ],
    "positioning": [
        ("line or tube dislodged while turning", (*_ANAES, "neurosurgeon"), False,
         "stop turning, secure airway and lines of both twins before continuing"),
    ],
    "exposure": [
        ("scalp bleeding with cross-transfusion between the twins",
         (*_ANAES, "neurosurgeon", "circulating_nurse"), False,
         "haemostasis; both anaesthetists balance blood products per twin"),
    ],
    "craniotomy": [
        ("venous air embolism", (*_ANAES, "neurosurgeon", "scrub_nurse"), False,
         "flood the field, lower the heads, aspirate the central lines of both twins"),
        ("sinus tear at the bone edge", ("neurosurgeon", "anaesthetist", "circulating_nurse"),
         False, "tamponade, call for blood for both twins, prepare sinus repair"),
    ],
    "dural_opening": [
        ("venous air embolism", (*_ANAES, "neurosurgeon", "scrub_nurse"), False,
         "flood the field, lower the heads, aspirate the central lines of both twins"),
    ],
    "vessel_division": [
        ("haemorrhage from shared vessel {vessel}",
         ("neurosurgeon", *_ANAES, "scrub_nurse", "circulating_nurse"), False,
         "temporary clips, tamponade; blood products to both twins; name the bleeding side"),
        ("brain swelling or monitoring change after dividing vessel {vessel}",
         ("neurosurgeon", "anaesthetist", "neurophysiologist"), False,
         "release temporary clip, review neuromonitoring, consider staging the rest"),
    ],
    "brain_separation": [
        ("haemorrhage from bridging vessels", ("neurosurgeon", *_ANAES, "scrub_nurse"), False,
         "bipolar and haemostatic matrix; anaesthetists balance volume per twin"),
        ("venous air embolism", (*_ANAES, "neurosurgeon"), False,
         "flood the field, lower the heads, aspirate the central lines"),
    ],
    "separation": [
        ("instability of the {colour} twin at separation", (*_ANAES, "circulating_nurse"), True,
         "that twin's team moves first; the other team holds its twin"),
    ],
    "dural_repair": [
        ("instability of the {colour} twin after separation", (*_ANAES, "circulating_nurse"),
         True, "stop surgery on that table, resuscitate; the other table carries on"),
    ],
    "cranial_reconstruction": [
        ("instability of the {colour} twin after separation", (*_ANAES, "circulating_nurse"),
         True, "stop surgery on that table, resuscitate; the other table carries on"),
    ],
    "scalp_closure": [
        ("instability of the {colour} twin after separation", (*_ANAES, "circulating_nurse"),
         True, "stop surgery on that table, resuscitate; the other table carries on"),
    ],
    "transfer_icu": [
        ("airway or line event in transit ({colour} twin)", _ANAES, True,
         "stop, secure the airway, call intensive care to meet the team"),
    ],
}


def _colours(phase: dict[str, Any]) -> list[str | None]:
    cols = sorted({n["colour"] for n in phase["needs"] if n["colour"]})
    return cols or [None]


def contingencies(
    phases: list[dict[str, Any]], assignments: list[dict[str, Any]], people: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """For each phase, the contingencies, who responds (on duty) and who stands by.

    ``people`` are the roster entries as written to plan.json (name, skills, window,
    colour worn).
    """
    out: list[dict[str, Any]] = []
    colour_of = {p["person"]: p.get("colour") for p in people}
    for ph in phases:
        templates = TEMPLATES.get(ph["kind"], [])
        duty = [a for a in assignments if a["phase"] == ph["id"] and a.get("kind") == "duty"]
        for event, roles, per_colour, action in templates:
            colours = _colours(ph) if per_colour else [None]
            for colour in colours:
                vessel = (ph.get("vessel") or {}).get("id", "")
                responders = sorted(
                    {
                        (a["person"], a["role"], a["twin"])
                        for a in duty
                        if a["role"] in roles
                        and (colour is None or a["twin"] in (colour, None))
                    },
                    key=lambda r: (roles.index(r[1]), r[2] or "", r[0]),
                )
                on_duty = {a["person"] for a in assignments if a["start_h"] <= ph["start_h"]
                           < a["end_h"]}
                standby = [
                    p["person"]
                    for p in people
                    if roles[0] in p["skills"]
                    and p["person"] not in on_duty
                    and p["earliest_h"] <= ph["start_h"] < p["latest_h"]
                    and colour_of.get(p["person"]) in (None, colour)
                ][:2]
                out.append(
                    {
                        "phase": ph["id"],
                        "event": event.format(colour=colour or "", vessel=vessel),
                        "colour": colour,
                        "responders": [
                            {"person": n, "role": r, "twin": t} for n, r, t in responders
                        ],
                        "standby": standby,
                        "actions": action,
                    }
                )
    return out
