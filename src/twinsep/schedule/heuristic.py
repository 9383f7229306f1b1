"""A quick first schedule to start the CP-SAT search from (a solution hint).

Forward in time, segment by segment: people on duty carry on while the rules allow it
(one role per stint, ``max_continuous_h``, their window), and every need still open is
given to someone free, preferring people who already wear the need's colour, whose main
role it is, who keep the more versatile free, who have worked least and who can stay
longest. A few passes differ in when someone is called back for a second stint and in
how long stints run; the best one is kept.

A pass keeps every rule of :mod:`twinsep.schedule.model` but looks no further ahead than
the current segment, so on a tight roster it may leave a need unfilled; the model (with
unfilled needs allowed at a prohibitive cost) then starts from it and closes the gaps, or
the strict model is solved from scratch. Deterministic: no randomness, ties broken by
roster order.
"""

from __future__ import annotations

import itertools

from twinsep.schedule.model import W_LOAD, W_ROLE, W_STINT, Held, Segments, available
from twinsep.schedule.phases import Operation
from twinsep.schedule.roster import Roster

#: Passes of :func:`first_schedule`: someone who has already worked in the role is called
#: back before a fresh person while their time on duty stays within this many minutes...
REUSE_CAPS_MIN = (0, 480, 600, 720, 840, 10**6)
#: ... and stints end this much before ``max_continuous_h`` (hand-overs at other times,
#: which may leave no short remainder at the end of the operation).
SHORTEN_MIN = (0, 60, 120)


def shortfall_min(seg: Segments, held: Held) -> int:
    """Unfilled person-minutes of a schedule."""
    short = 0
    for s, needs in enumerate(seg.needs):
        for key, (count, _pid) in needs.items():
            have = sum(1 for row in held.values() if row[s] == key)
            short += max(0, count - have) * seg.length(s)
    return short


def objective(seg: Segments, held: Held) -> tuple[int, int, int]:
    """(stints, roles used, longest time on duty in minutes) of a schedule."""
    stints = roles = load = 0
    for row in held.values():
        stints += sum(1 for s, k in enumerate(row)
                      if k is not None and (s == 0 or row[s - 1] is None))
        roles += len({k[0] for k in row if k is not None})
        load = max(load, sum(seg.length(s) for s, k in enumerate(row) if k is not None))
    return stints, roles, load


def first_schedule(roster: Roster, op: Operation, seg: Segments) -> tuple[Held, int]:
    """The best greedy pass and its unfilled person-minutes (0: a valid schedule).

    Best: fewest unfilled person-minutes, then the lowest objective of the model.
    """
    best: Held | None = None
    best_key: tuple[int, int] | None = None
    for shorten, cap in itertools.product(SHORTEN_MIN, REUSE_CAPS_MIN):
        held = greedy(roster, op, seg, reuse_cap_min=cap, shorten_min=shorten)
        n_stints, n_roles, load = objective(seg, held)
        key = (shortfall_min(seg, held), W_STINT * n_stints + W_ROLE * n_roles + W_LOAD * load)
        if best_key is None or key < best_key:
            best, best_key = held, key
    assert best is not None and best_key is not None
    return best, best_key[0]


def greedy(
    roster: Roster,
    op: Operation,
    seg: Segments,
    *,
    reuse_cap_min: int = 0,
    shorten_min: int = 0,
) -> Held:
    """One forward pass; a need that finds nobody stays unfilled."""
    del op  # the phases are in ``seg``
    st = roster.settings
    ov, gap = st.handover_overlap_min, st.min_break_min + st.handover_overlap_min
    people = roster.people
    n, T, S = len(people), seg.times, seg.n
    colour: list[str | None] = [None] * n
    stint: list[tuple[str, int] | None] = [None] * n  # (role, start minute) when on duty
    last_end: list[int | None] = [None] * n
    load = [0] * n
    roles_done: list[set[str]] = [set() for _ in people]
    held: list[list[tuple[str, str | None] | None]] = [[None] * S for _ in people]
    pool = {
        r: sum(1 for p in people if r in p.skills)
        for r in {k[0] for needs in seg.needs for k in needs}
    }

    longest = [
        p.max_continuous_min - shorten_min if p.max_continuous_min > shorten_min
        else p.max_continuous_min
        for p in people
    ]

    def fits(i: int, start: int, s: int) -> bool:
        extra = ov if start > 0 else 0
        return available(people[i], seg, s) and T[s + 1] - start + extra <= longest[i]

    def take(i: int, s: int, key: tuple[str, str | None], open_: dict) -> None:
        held[i][s] = key
        open_[key] -= 1
        if key[1] is not None:
            colour[i] = key[1]
        roles_done[i].add(key[0])
        load[i] += seg.length(s)

    for s in range(S):
        open_ = {k: c for k, (c, _pid) in seg.needs[s].items()}
        # 1. stints carry on, the latest started first (the longest-serving hand over)
        on = sorted((i for i in range(n) if stint[i] is not None),
                    key=lambda i: (-stint[i][1], i))  # type: ignore[index]
        for i in on:
            role, start = stint[i]  # type: ignore[misc]
            prev = held[i][s - 1] if s > 0 else None
            options = [prev] if prev is not None else []
            options += [(role, colour[i]), (role, None)] if colour[i] else [(role, None)]
            if colour[i] is None:
                options += sorted(((r, c) for (r, c) in open_ if r == role and c),
                                  key=lambda k: (-open_[k], str(k)))
            key = next((k for k in options if open_.get(k, 0) > 0), None)
            if key is not None and fits(i, start, s):
                take(i, s, key, open_)
            else:
                stint[i] = None
                last_end[i] = T[s]
        # 2. open needs go to people who are free, scarcest role first
        for key in sorted(open_, key=lambda k: (pool[k[0]], str(k))):
            role, col = key
            while open_[key] > 0:
                best, best_rank = None, None
                for i, p in enumerate(people):
                    if held[i][s] is not None or stint[i] is not None or role not in p.skills:
                        continue
                    if col is not None and colour[i] not in (None, col):
                        continue
                    if s > 0 and T[s] - ov < p.earliest_min:
                        continue
                    if last_end[i] is not None and not (
                        last_end[i] < T[s] and last_end[i] + gap <= T[s]
                    ):
                        continue
                    if not fits(i, T[s], s):
                        continue
                    stay = min(p.latest_min, T[s] + longest[i], T[-1])
                    back = role in roles_done[i] and load[i] + stay - T[s] <= reuse_cap_min
                    rank = (
                        col is not None and colour[i] != col,  # already wears the colour
                        p.role != role,                         # main role
                        len(p.skills),                          # keep the versatile free
                        not back,                               # call back within the cap
                        role not in roles_done[i] and bool(roles_done[i]),
                        load[i],
                        -stay,
                        i,
                    )
                    if best_rank is None or rank < best_rank:
                        best, best_rank = i, rank
                if best is None:
                    break  # unfilled
                stint[best] = (role, T[s])
                take(best, s, key, open_)
    return {p.name: held[i] for i, p in enumerate(people)}
