"""From plan and roster to the ``schedule`` section of plan.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twinsep.schedule.contingencies import contingencies
from twinsep.schedule.heuristic import first_schedule
from twinsep.schedule.model import (
    InfeasibleRosterError,
    Segments,
    build_segments,
    explain_infeasible,
    precheck,
    solve,
)
from twinsep.schedule.phases import Operation, derive_operation
from twinsep.schedule.roster import Roster

#: Deterministic time limit (about seconds of one core) of the search that improves the
#: greedy first schedule...
DEFAULT_TIME_LIMIT_S = 0.5
#: ... and of the search from scratch when that one cannot fill every need.
COLD_TIME_LIMIT_S = 2.0


def _h(minutes: int) -> float:
    return minutes / 60


def _assignments(
    roster: Roster, op: Operation, seg: Segments, held: dict[str, list]
) -> list[dict[str, Any]]:
    """Turn the solver's per-segment holdings into assignment records.

    Each stint gives one ``duty`` record per phase it spans; a stint that starts after 0 h
    also gives a ``handover`` record for the overlap before it.
    """
    ov = roster.settings.handover_overlap_min
    phases = {p.id: p for p in op.phases}
    T = seg.times
    out: list[dict[str, Any]] = []
    for person in roster.people:
        row = held[person.name]
        s = 0
        while s < seg.n:
            if row[s] is None:
                s += 1
                continue
            if T[s] > 0:
                key = row[s]
                pid = seg.needs[s][key][1]
                prev = [
                    q.name for q in roster.people
                    if s > 0 and held[q.name][s - 1] == key and held[q.name][s] != key
                ]
                rec = {
                    "person": person.name, "role": key[0], "phase": pid,
                    "table": phases[pid].table, "twin": key[1],
                    "start_h": _h(T[s] - ov), "end_h": _h(T[s]), "kind": "handover",
                }
                if prev:
                    rec["from"] = sorted(prev)[0]
                out.append(rec)
            while s < seg.n and row[s] is not None:
                key = row[s]
                pid = seg.needs[s][key][1]
                a = s
                while s < seg.n and row[s] == key and seg.needs[s][key][1] == pid:
                    s += 1
                out.append({
                    "person": person.name, "role": key[0], "phase": pid,
                    "table": phases[pid].table, "twin": key[1],
                    "start_h": _h(T[a]), "end_h": _h(T[s]), "kind": "duty",
                })
    out.sort(key=lambda r: (r["start_h"], r["end_h"], r["person"], r["phase"], r["kind"]))
    return out


def _people(roster: Roster, assignments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in roster.people:
        mine = [a for a in assignments if a["person"] == p.name]
        colours = sorted({a["twin"] for a in mine if a["twin"]})
        out.append({
            "person": p.name,
            "role": p.role,
            "skills": list(p.skills),
            "max_continuous_h": _h(p.max_continuous_min),
            "earliest_h": _h(p.earliest_min),
            "latest_h": _h(p.latest_min),
            "colour": colours[0] if colours else None,
            "on_duty_h": sum(a["end_h"] - a["start_h"] for a in mine),
            "stints": sum(1 for a in mine if a["kind"] == "handover")
            + (1 if any(a["start_h"] == 0 for a in mine) else 0),
        })
    return out


def plan_schedule(
    plan: dict[str, Any],
    roster: Roster,
    *,
    stage: int | None = None,
    time_limit_s: float | None = None,
    workers: int = 2,
) -> dict[str, Any]:
    """The ``schedule`` section of plan.json for ``plan`` staffed from ``roster``.

    Parameters
    ----------
    plan : dict
        plan.json (may be nearly empty; missing metrics fall back to the defaults).
    roster : Roster
        The team (:func:`twinsep.schedule.load_roster`).
    stage : int, optional
        Which operation of a staged separation to schedule; default the final one.
    time_limit_s : float, optional
        Deterministic time limit of the CP-SAT search (about seconds of one core). Default
        :data:`DEFAULT_TIME_LIMIT_S` to improve the greedy first schedule (and close its
        gaps, if any), or :data:`COLD_TIME_LIMIT_S` for a search from scratch when gaps
        remain.
    workers : int
        CP-SAT workers (2 by default, searched in a deterministic interleaved order).

    Returns
    -------
    dict
        ``operation``, ``settings``, ``phases``, ``assignments``, ``people``,
        ``contingencies``, ``notes``, ``solver``. Times in hours from the start of
        anaesthesia.

    Raises
    ------
    InfeasibleRosterError
        The roster cannot staff the operation; the message names the short role and when.
    """
    op = derive_operation(plan, roster.phases, stage)
    seg = build_segments(op, roster.settings.slot_min)
    precheck(roster, op, seg)
    warm = DEFAULT_TIME_LIMIT_S if time_limit_s is None else time_limit_s
    hint, gaps = first_schedule(roster, op, seg)
    # improve the greedy schedule by large-neighbourhood search; if it has gaps, allow them
    # at a prohibitive cost (a slower model) so that the search can start from it
    sol = solve(roster, op, seg, time_limit_s=warm, workers=workers, soft=gaps > 0, hint=hint)
    start, limit = ("greedy" if gaps == 0 else "greedy, gaps closed by the search"), warm
    if not sol.held or sol.objective.get("short_person_min", 0) > 0:
        # gaps stay: the strict model from scratch finds a schedule or proves there is none
        gapped = sol if sol.held else None
        limit = COLD_TIME_LIMIT_S if time_limit_s is None else time_limit_s
        sol = solve(roster, op, seg, time_limit_s=limit, workers=workers)
        start = "search from scratch"
        if not sol.held:
            if sol.status == "INFEASIBLE":  # the gaps left above say where and when
                raise InfeasibleRosterError(explain_infeasible(roster, op, seg, warm, gapped,
                                                                hint=hint))
            raise InfeasibleRosterError(
                f"no schedule found within the time limit ({sol.status}); "
                "raise --time-limit or add people"
            )
    sol.objective.pop("short_person_min", None)
    sol.objective.pop("_short", None)
    assignments = _assignments(roster, op, seg, sol.held)
    phases = [p.as_dict() for p in op.phases]
    people = _people(roster, assignments)
    notes = list(op.notes)
    notes.append(
        f"{len([p for p in people if p['on_duty_h'] > 0])} of {len(people)} people on duty; "
        f"{sol.objective['stints']} stints"
    )
    sep = op.separation_min
    return {
        "operation": {
            "stage": op.stage,
            "n_stages": op.n_stages,
            "final": op.final,
            "vessels_done": list(op.vessels_done),
            "total_h": _h(op.end_min),
            "separation_h": _h(sep) if sep is not None else None,
        },
        "roster": Path(roster.source).name,
        "settings": roster.settings.as_dict(),
        "phases": phases,
        "assignments": assignments,
        "people": people,
        "contingencies": contingencies(phases, assignments, people),
        "notes": notes,
        "solver": {
            "engine": "OR-Tools CP-SAT",
            "status": sol.status,
            "workers": workers,
            "deterministic_time_limit": limit,
            "start": start,
            **sol.objective,
        },
    }
