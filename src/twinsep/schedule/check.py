"""An independent checker of a produced schedule.

It reads only the ``schedule`` section of plan.json and the roster as plain YAML data, and
shares no code with the model: every rule is re-checked on the assignment records with
times in whole minutes.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any


def _m(hours: float) -> int:
    return round(hours * 60)


def check_schedule(schedule: dict[str, Any], roster_data: dict[str, Any]) -> list[str]:
    """Every broken rule of ``schedule`` as one line each (empty when all hold).

    Parameters
    ----------
    schedule : dict
        The ``schedule`` section of plan.json.
    roster_data : dict
        The roster file as read by ``yaml.safe_load``.

    Rules
    -----
    1. every record names a person of the roster, a role among the person's skills and a
       phase of the schedule, lies inside the person's window and (for duty) its phase;
       ``table`` is the phase's table (null before separation);
    2. nobody is in two places at once;
    3. every need (role, colour, count) of every phase is filled at every minute;
    4. a stint (records touching in time) lasts at most ``max_continuous_h``; two stints of
       one person are at least ``min_break_min`` apart;
    5. a stint starting after 0 h begins with a hand-over of ``handover_overlap_min``;
    6. nobody works for both twins (one colour per person);
    7. after separation both tables are staffed at once: the purple and orange phases run
       in parallel, each with its needs filled.
    """
    errors: list[str] = []
    st = schedule.get("settings", {})
    ov = int(st.get("handover_overlap_min", 0))
    brk = int(st.get("min_break_min", 0))
    people = {}
    for e in roster_data.get("people", []):
        skills = set(e.get("skills") or []) | {e["role"]}
        people[e["person"]] = {
            "skills": skills,
            "max": _m(e["max_continuous_h"]),
            "lo": _m(e.get("earliest_h", 0)),
            "hi": _m(e.get("latest_h", 48)),
        }
    phases = {p["id"]: p for p in schedule["phases"]}
    recs = schedule["assignments"]

    # 1. records
    for r in recs:
        who, a, b = r["person"], _m(r["start_h"]), _m(r["end_h"])
        tag = f"{who} {r['phase']} {r['start_h']:.2f}-{r['end_h']:.2f} h"
        if who not in people:
            errors.append(f"{tag}: not in the roster")
            continue
        p = people[who]
        if r["role"] not in p["skills"]:
            errors.append(f"{tag}: role {r['role']} is not among the person's skills")
        if not a < b:
            errors.append(f"{tag}: empty or reversed interval")
        if a < p["lo"] or b > p["hi"]:
            errors.append(f"{tag}: outside the person's hours on duty")
        ph = phases.get(r["phase"])
        if ph is None:
            errors.append(f"{tag}: unknown phase")
            continue
        if r["table"] != ph["table"]:
            errors.append(f"{tag}: table {r['table']} but the phase is on {ph['table']}")
        if r.get("kind") == "duty" and (a < _m(ph["start_h"]) or b > _m(ph["end_h"])):
            errors.append(f"{tag}: outside its phase")

    by_person: dict[str, list[dict]] = {}
    for r in recs:
        by_person.setdefault(r["person"], []).append(r)
    for who, rs in sorted(by_person.items()):
        rs = sorted(rs, key=lambda r: (_m(r["start_h"]), _m(r["end_h"])))
        # 2. one place at a time
        for r1, r2 in pairwise(rs):
            if _m(r2["start_h"]) < _m(r1["end_h"]):
                errors.append(
                    f"{who}: two places at once at {r2['start_h']:.2f} h "
                    f"({r1['phase']}, {r2['phase']})"
                )
        # 4. stints and breaks
        stints: list[list[int]] = []
        for r in rs:
            a, b = _m(r["start_h"]), _m(r["end_h"])
            if stints and a <= stints[-1][1]:
                stints[-1][1] = max(stints[-1][1], b)
            else:
                stints.append([a, b])
        lim = people.get(who, {}).get("max", 10**9)
        for a, b in stints:
            if b - a > lim:
                errors.append(
                    f"{who}: stint {a / 60:.2f}-{b / 60:.2f} h longer than {lim / 60:g} h"
                )
        for (_, b1), (a2, _) in pairwise(stints):
            if a2 - b1 < brk:
                errors.append(f"{who}: break of {a2 - b1} min at {b1 / 60:.2f} h (< {brk} min)")
        # 5. hand-over overlap at the start of every stint after 0 h
        for a, _b in stints:
            if a == 0:
                continue
            first = [r for r in rs if _m(r["start_h"]) == a]
            ok = any(
                r.get("kind") == "handover" and _m(r["end_h"]) - a >= ov for r in first
            )
            if not ok:
                errors.append(f"{who}: stint at {a / 60:.2f} h starts without a {ov} min hand-over")
        for r in rs:
            if r.get("kind") == "handover":
                end = _m(r["end_h"])
                if not any(
                    q.get("kind") == "duty" and _m(q["start_h"]) == end and q["role"] == r["role"]
                    for q in rs
                ):
                    errors.append(f"{who}: hand-over at {r['start_h']:.2f} h leads to no duty")
        # 6. one colour per person
        colours = {r["twin"] for r in rs if r.get("twin")} | {r["table"] for r in rs if r["table"]}
        if len(colours) > 1:
            errors.append(f"{who}: works for both twins ({', '.join(sorted(colours))})")

    # 3. coverage at every minute of every phase (checked between breakpoints)
    duty = [r for r in recs if r.get("kind") == "duty"]
    for ph in schedule["phases"]:
        a0, b0 = _m(ph["start_h"]), _m(ph["end_h"])
        mine = [r for r in duty if r["phase"] == ph["id"]]
        cuts = sorted({a0, b0} | {_m(r["start_h"]) for r in mine} | {_m(r["end_h"]) for r in mine})
        cuts = [c for c in cuts if a0 <= c <= b0]
        for need in ph["needs"]:
            for a, b in pairwise(cuts):
                have = {
                    r["person"] for r in mine
                    if r["role"] == need["role"] and r["twin"] == need["colour"]
                    and _m(r["start_h"]) <= a and b <= _m(r["end_h"])
                }
                if len(have) < need["count"]:
                    col = f" ({need['colour']})" if need["colour"] else ""
                    errors.append(
                        f"{ph['id']}: {need['role']}{col} has {len(have)} of {need['count']} "
                        f"at {a / 60:.2f}-{b / 60:.2f} h"
                    )
                    break

    # 7. both tables at once after separation
    sep = [p for p in schedule["phases"] if p["kind"] == "separation"]
    if sep:
        t_sep = _m(sep[0]["end_h"])
        for colour in ("purple", "orange"):
            mine = [p for p in schedule["phases"] if p["table"] == colour]
            if not mine:
                errors.append(f"no {colour} table after separation")
                continue
            if min(_m(p["start_h"]) for p in mine) != t_sep:
                errors.append(f"the {colour} table does not start at separation")
            if any(_m(p["start_h"]) < t_sep for p in mine):
                errors.append(f"the {colour} table starts before separation")
        for p in schedule["phases"]:
            if p["table"] is None and _m(p["end_h"]) > t_sep:
                errors.append(f"{p['id']}: a one-table phase after separation")
    return errors
