"""Assign people to phases and tables with an OR-Tools CP-SAT model.

Phase times are fixed (:mod:`twinsep.schedule.phases`); the timeline is cut into segments at
every phase boundary and on a grid of ``slot_min``. For each person, segment and needed
(role, colour) the model has a Boolean "this person fills this need now". Constraints:

* every need of every segment is filled exactly (roles by skill, within each person's
  earliest/latest hours);
* a person is in one place at a time and keeps one role through a stint;
* a person wears one colour at most: once on the purple (orange) twin, never on the other;
* a stint that starts after time 0 starts ``handover_overlap_min`` early (the hand-over), and
  that overlap counts towards the stint's length;
* a stint (overlap included) is at most ``max_continuous_h``; two stints are at least
  ``min_break_min`` apart (the next hand-over overlap included).

The objective minimises the number of stints (hand-overs), then the number of different
roles per person, then the longest total time on duty of anyone (balance). The search
starts from a greedy schedule (:mod:`twinsep.schedule.heuristic`) given as a complete hint
and improves it by large-neighbourhood search; ``soft`` allows unfilled needs at a
prohibitive cost so that a greedy schedule with gaps is a valid start. The search is
deterministic: fixed seed, two workers interleaved, deterministic time limit.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from twinsep.errors import InputError
from twinsep.schedule.phases import Operation
from twinsep.schedule.roster import Person, Roster

#: Objective weights.
W_STINT, W_ROLE, W_LOAD = 60, 30, 1


class InfeasibleRosterError(InputError):
    """The roster cannot staff the operation; the message names the short role and when."""

    def __init__(self, message: str, shortfalls: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.shortfalls = shortfalls or []


@dataclass
class Segments:
    """The timeline cut into segments with the needs of each.

    ``needs[s]`` maps (role, colour) to (count, phase id) during segment ``s``.
    """

    times: list[int]
    needs: list[dict[tuple[str, str | None], tuple[int, str]]]

    @property
    def n(self) -> int:
        return len(self.times) - 1

    def length(self, s: int) -> int:
        return self.times[s + 1] - self.times[s]


def build_segments(op: Operation, slot_min: int) -> Segments:
    """Cut the operation at phase boundaries and every ``slot_min`` minutes."""
    end = op.end_min
    cuts = {0, end}
    for p in op.phases:
        cuts.update((p.start_min, p.end_min))
    cuts.update(range(0, end, slot_min))
    times = sorted(cuts)
    needs: list[dict] = []
    for a in times[:-1]:
        seg: dict[tuple[str, str | None], tuple[int, str]] = {}
        for p in op.phases:
            if p.start_min <= a < p.end_min:
                for n in p.needs:
                    key = (n.role, n.colour)
                    if key in seg:  # two phases need the same people at once
                        raise InputError(
                            f"phases {seg[key][1]} and {p.id} both need {n.role} at {a / 60:.2f} h"
                        )
                    seg[key] = (n.count, p.id)
        needs.append(seg)
    return Segments(times, needs)


def _fmt_h(minutes: int) -> str:
    return f"{minutes / 60:.1f}"


def _where(colours: set[str | None], sep_min: int | None, t: int) -> str:
    cols = sorted(c for c in colours if c)
    if not cols:
        return ""
    after = sep_min is not None and t >= sep_min
    if len(cols) == 1:
        return f" on the {cols[0]} table" if after else f" for the {cols[0]} twin"
    return " on both tables" if after else " (one per twin)"


# --- capacity pre-check ----------------------------------------------------------------
def available(p: Person, seg: Segments, s: int) -> bool:
    """Whether segment ``s`` lies inside the person's window on duty."""
    return p.earliest_min <= seg.times[s] and seg.times[s + 1] <= p.latest_min


def precheck(roster: Roster, op: Operation, seg: Segments) -> None:
    """Raise :class:`InfeasibleRosterError` if some segment has more needs than people.

    Checks each role alone, then every set of roles together (people with several skills
    can fill only one need at a time), and reports the earliest shortage.
    """
    for s in range(seg.n):
        demand: dict[str, int] = {}
        colours: dict[str, set] = {}
        phases: dict[str, set] = {}
        for (role, colour), (count, pid) in seg.needs[s].items():
            demand[role] = demand.get(role, 0) + count
            colours.setdefault(role, set()).add(colour)
            phases.setdefault(role, set()).add(pid)
        if not demand:
            continue
        avail = [p for p in roster.people if available(p, seg, s)]
        roles = sorted(demand)
        for size in range(1, len(roles) + 1):
            for combo in itertools.combinations(roles, size):
                need = sum(demand[r] for r in combo)
                have = sum(1 for p in avail if any(r in p.skills for r in combo))
                if have >= need:
                    continue
                # extend the window over the following segments with the same shortage
                e = s
                while e + 1 < seg.n:
                    nxt = seg.needs[e + 1]
                    need2 = sum(c for (r, _), (c, _) in nxt.items() if r in combo)
                    avail2 = [p for p in roster.people if available(p, seg, e + 1)]
                    have2 = sum(1 for p in avail2 if any(r in p.skills for r in combo))
                    if need2 != need or have2 != have:
                        break
                    e += 1
                window = f"{_fmt_h(seg.times[s])}-{_fmt_h(seg.times[e + 1])} h"
                pids = sorted(set().union(*(phases[r] for r in combo)))
                if size == 1:
                    r = combo[0]
                    where = _where(colours[r], op.separation_min, seg.times[s])
                    msg = (
                        f"infeasible: role {r!r} needs {need} "
                        f"{'person' if need == 1 else 'people'} at {window}{where} "
                        f"({', '.join(pids)}); the roster has {have} available then"
                    )
                else:
                    names = ", ".join(repr(r) for r in combo)
                    msg = (
                        f"infeasible: roles {names} together need {need} people at {window} "
                        f"({', '.join(pids)}); the roster has {have} who can take them then"
                    )
                raise InfeasibleRosterError(
                    msg,
                    [{"roles": list(combo), "start_h": seg.times[s] / 60,
                      "end_h": seg.times[e + 1] / 60, "need": need, "have": have}],
                )


# --- the model -------------------------------------------------------------------------
#: Per person, the (role, colour) held in each segment (None: off duty).
Held = dict[str, list[tuple[str, str | None] | None]]


@dataclass
class Solution:
    """Raw solver output: for each person, the (role, colour) held in each segment."""

    status: str
    held: Held
    objective: dict[str, int] = field(default_factory=dict)


def _solver_params(solver: Any, time_limit_s: float, workers: int, lns_only: bool = False) -> None:
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = 0
    if workers > 1:
        solver.parameters.interleave_search = True
    # from a complete hint, large-neighbourhood search improves a schedule far sooner than
    # the full-problem workers, which spend the budget on a bound they cannot close
    solver.parameters.use_lns_only = lns_only
    # deterministic time (not wall time) so that the same input gives the same answer
    solver.parameters.max_deterministic_time = float(time_limit_s)
    solver.parameters.log_search_progress = False


def solve(
    roster: Roster,
    op: Operation,
    seg: Segments,
    *,
    time_limit_s: float = 10.0,
    workers: int = 2,
    slack: bool = False,
    soft: bool = False,
    hint: Held | None = None,
) -> Solution:
    """Build and solve the CP-SAT model.

    Parameters
    ----------
    time_limit_s : float
        Deterministic time limit (about seconds on one core).
    workers : int
        CP-SAT workers (interleaved, so the result does not depend on thread timing).
    slack : bool
        Allow unfilled needs and minimise them (person-minutes) alone; used to explain an
        infeasible roster.
    soft : bool
        Allow unfilled needs at a cost above any other term of the objective, so that a
        first schedule with gaps is a valid start; a solution with
        ``objective["short_person_min"] == 0`` is a solution of the strict model with the
        same objective.
    hint : dict, optional
        A schedule to start from (:func:`twinsep.schedule.heuristic.first_schedule`);
        large-neighbourhood search then improves it (with ``soft``, it may have gaps).
    """
    from ortools.sat.python import cp_model

    m = cp_model.CpModel()
    S = seg.n
    # the order in which variables and constraints are made is kept: CP-SAT's search (and
    # so the schedule) depends on it
    x, x_ps, cover = _assignment_vars(m, roster, seg)
    shortfall = _cover_needs(m, seg, cover, relaxed=slack or soft)
    stints, roles_used = [], []
    load_max = m.new_int_var(0, seg.times[-1], "load_max")
    # for a complete hint: every variable of the model with its value under the hint
    derived: list[tuple[Any, Any]] = []  # (variable, function of the hinted rows)
    for pi, p in enumerate(roster.people):
        load = _person_rules(m, pi, p, roster.settings, seg, x_ps, stints, roles_used, derived)
        if load is not None:
            m.add(load_max >= load)
    n_stints = sum(stints)
    n_roles = sum(roles_used)
    total_short = sum(v * length for v, length, _, _ in shortfall)
    if slack:
        m.minimize(total_short)
    else:
        cost = W_STINT * n_stints + W_ROLE * n_roles + W_LOAD * load_max
        if soft:  # one unfilled person-minute outweighs the rest of the objective
            w_short = (W_STINT * len(stints) + W_ROLE * len(roles_used)
                       + W_LOAD * seg.times[-1] + 1)
            cost = cost + w_short * total_short
        m.minimize(cost)
    if hint is not None:
        _add_hint(m, hint, roster, seg, x, shortfall, derived, load_max)
    solver = cp_model.CpSolver()
    _solver_params(solver, time_limit_s, workers, lns_only=hint is not None)
    status = solver.solve(m)
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Solution(name, {})
    held: dict[str, list] = {}
    for pi, p in enumerate(roster.people):
        row: list = [None] * S
        for s in range(S):
            for key in seg.needs[s]:
                v = x.get((pi, s, key))
                if v is not None and solver.value(v):
                    row[s] = key
        held[p.name] = row
    objective = {
        "stints": int(solver.value(n_stints)),
        "roles_used": int(solver.value(n_roles)),
        "max_load_min": int(solver.value(load_max)),
    }
    if slack or soft:
        objective["short_person_min"] = int(solver.value(total_short)) if shortfall else 0
        objective["_short"] = [  # type: ignore[assignment]
            (s, key, int(solver.value(v))) for v, _length, s, key in shortfall
            if int(solver.value(v))]
    return Solution(name, held, objective)


def _assignment_vars(m: Any, roster: Roster, seg: Segments) -> tuple[dict, dict, dict]:
    """One boolean per (person, segment, need) the person may fill: the variables by key,
    by (person, segment) and by (segment, need)."""
    x: dict[tuple[int, int, tuple], Any] = {}
    x_ps: dict[tuple[int, int], list[tuple[tuple, Any]]] = {}
    cover: dict[tuple[int, tuple], list] = {}
    for pi, p in enumerate(roster.people):
        for s in range(seg.n):
            if not available(p, seg, s):
                continue
            for key in sorted(seg.needs[s], key=str):
                if key[0] in p.skills:
                    v = m.new_bool_var(f"x_{pi}_{s}_{key[0]}_{key[1]}")
                    x[pi, s, key] = v
                    x_ps.setdefault((pi, s), []).append((key, v))
                    cover.setdefault((s, key), []).append(v)
    return x, x_ps, cover


def _cover_needs(m: Any, seg: Segments, cover: dict, *, relaxed: bool) -> list:
    """Every need filled by exactly its count (``relaxed``: with a shortfall variable)."""
    shortfall = []
    for s in range(seg.n):
        for key, (count, _pid) in sorted(seg.needs[s].items(), key=str):
            vs = cover.get((s, key), [])
            if relaxed:
                short = m.new_int_var(0, count, f"short_{s}_{key}")
                m.add(sum(vs) + short == count)
                shortfall.append((short, seg.length(s), s, key))
            elif len(vs) < count:
                m.add_bool_or([])  # trivially infeasible; the pre-check explains it
            else:
                m.add(sum(vs) == count)
    return shortfall


def _person_rules(m: Any, pi: int, p: Person, st: Any, seg: Segments, x_ps: dict,
                  stints: list, roles_used: list, derived: list) -> Any:
    """One person's rules: one need at a time, one colour, one role per stint, the window,
    the continuous-hours limit and the breaks. Appends to ``stints``, ``roles_used`` and
    ``derived``; returns the person's load (minutes, an expression) or None when the person
    can fill nothing."""
    S = seg.n
    w: list[Any] = [None] * S
    by_role: dict[str, list[Any]] = {}
    by_colour: dict[str, list[Any]] = {}
    for s in range(S):
        vs = x_ps.get((pi, s), [])
        if not vs:
            continue
        ws = m.new_bool_var(f"w_{pi}_{s}")
        m.add(sum(v for _, v in vs) == ws)
        w[s] = ws
        derived.append((ws, lambda h, n=p.name, s=s: h[n][s] is not None))
        for key, v in vs:
            by_role.setdefault(key[0], [None] * S)
            by_role[key[0]][s] = v if by_role[key[0]][s] is None else by_role[key[0]][s] + v
            if key[1]:
                by_colour.setdefault(key[1], []).append(v)
    if all(v is None for v in w):
        return None
    _one_colour(m, pi, p, by_colour, derived)
    _one_role_per_stint(m, pi, p, by_role, w, roles_used, derived)
    for s in range(S):
        if w[s] is not None:
            _stint_rules(m, pi, p, st, seg, w, s, stints, derived)
    return sum(seg.length(s) * w[s] for s in range(S) if w[s] is not None)


def _one_colour(m: Any, pi: int, p: Person, by_colour: dict, derived: list) -> None:
    """A person works for one twin's table only (purple or orange)."""
    colour_vars = []
    for colour, vs in sorted(by_colour.items()):
        c = m.new_bool_var(f"c_{pi}_{colour}")
        derived.append(
            (c, lambda h, n=p.name, col=colour: any(k and k[1] == col for k in h[n]))
        )
        for v in vs:
            m.add_implication(v, c)
        colour_vars.append(c)
    if len(colour_vars) > 1:
        m.add(sum(colour_vars) <= 1)


def _one_role_per_stint(m: Any, pi: int, p: Person, by_role: dict, w: list,
                        roles_used: list, derived: list) -> None:
    """A stint keeps its role; ``roles_used`` gets one boolean per role the person has."""
    S = len(w)
    for role, xs in by_role.items():
        for s in range(S - 1):
            if xs[s] is not None and w[s + 1] is not None:
                nxt = xs[s + 1] if xs[s + 1] is not None else 0
                m.add(xs[s] + w[s + 1] - nxt <= 1)
        u = m.new_bool_var(f"u_{pi}_{role}")
        derived.append((u, lambda h, n=p.name, r=role: any(k and k[0] == r for k in h[n])))
        for v in xs:
            if v is not None:
                m.add(v <= u)
        roles_used.append(u)


def _stint_rules(m: Any, pi: int, p: Person, st: Any, seg: Segments, w: list, s: int,
                 stints: list, derived: list) -> None:
    """The rules at segment ``s`` of a person who may work there: the overlap inside the
    person's window, stint starts (for the objective), the continuous-hours limit and the
    break after a stint."""
    T, S = seg.times, seg.n
    ov, brk = st.handover_overlap_min, st.min_break_min
    prev = w[s - 1] if s > 0 else None
    # a stint that starts after 0 needs the overlap inside the person's window
    if s > 0 and T[s] - ov < p.earliest_min:
        m.add(w[s] <= (prev if prev is not None else 0))
    # stint starts, for the objective
    if s == 0 or prev is None:
        stints.append(w[s])
    else:
        b = m.new_bool_var(f"start_{pi}_{s}")
        m.add(b >= w[s] - prev)
        derived.append(
            (b, lambda h, n=p.name, s=s: h[n][s] is not None and h[n][s - 1] is None)
        )
        stints.append(b)
    # continuous-hours limit: no stint starting at s runs through j
    extra = ov if T[s] > 0 else 0
    for j in range(s, S):
        if w[j] is None:
            break
        if T[j + 1] - T[s] + extra > p.max_continuous_min:
            run = sum(w[s : j + 1])
            m.add(run - (prev if prev is not None else 0) <= j - s)
            break
    # break after a stint that ends with segment s
    nxt = w[s + 1] if s + 1 < S else None
    k = s + 2
    while k < S and T[k] < T[s + 1] + brk + ov:
        if w[k] is not None:
            m.add(w[s] - (nxt if nxt is not None else 0) + w[k] <= 1)
        k += 1


def _add_hint(m: Any, hint: Held, roster: Roster, seg: Segments, x: dict, shortfall: list,
              derived: list, load_max: Any) -> None:
    """A complete hint: every variable with its value under the hinted schedule."""
    for short, _length, s, key in shortfall:
        held_by = sum(1 for row in hint.values() if row[s] == key)
        m.add_hint(short, max(0, seg.needs[s][key][0] - held_by))
    for (pi, s, key), v in x.items():
        m.add_hint(v, hint[roster.people[pi].name][s] == key)
    for v, value in derived:
        m.add_hint(v, bool(value(hint)))
    m.add_hint(load_max, max(
        sum(seg.length(s) for s, k in enumerate(row) if k is not None)
        for row in hint.values()
    ))


def explain_infeasible(
    roster: Roster, op: Operation, seg: Segments, time_limit_s: float,
    sol: Solution | None = None, hint: Held | None = None,
) -> str:
    """One line naming the role that is short first, when and by how many.

    From ``sol`` (a solution of the model with ``slack`` or ``soft``) when given; else the
    model with slack starts from ``hint``, the greedy schedule of
    :func:`twinsep.schedule.heuristic.first_schedule` (gaps and all), and the search
    minimises the unfilled person-minutes from there.
    """
    if sol is None or not sol.objective.get("_short"):
        if hint is None:
            raise ValueError("explain_infeasible needs a solution with slack or the greedy "
                             "first schedule (hint)")
        sol = solve(roster, op, seg, time_limit_s=time_limit_s, slack=True, hint=hint)
    shorts = sol.objective.get("_short") if sol.held else None
    st = roster.settings
    rules = (
        f"continuous-hours limits, {st.min_break_min} min breaks and "
        f"{st.handover_overlap_min} min hand-overs"
    )
    if not shorts:
        return f"infeasible: no schedule meets the {rules} ({sol.status})"
    shorts = sorted(shorts, key=lambda t: (t[0], str(t[1])))
    s0, key, k = shorts[0]
    e = s0
    while any(s == e + 1 and q == key for s, q, _ in shorts):
        e += 1
    count, pid = seg.needs[s0][key]
    where = _where({key[1]}, op.separation_min, seg.times[s0])
    window = f"{_fmt_h(seg.times[s0])}-{_fmt_h(seg.times[e + 1])} h"
    others = len({(s, q) for s, q, _ in shorts if q != key or not s0 <= s <= e})
    more = f"; {others} more shortfalls follow" if others else ""
    return (
        f"infeasible: role {key[0]!r} needs {count} "
        f"{'person' if count == 1 else 'people'} at {window}{where} ({pid}); with the "
        f"{rules} the roster can cover only {count - k} then{more}"
    )
