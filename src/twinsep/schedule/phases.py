"""Phases of one operation, derived from the plan, with fixed start and end times.

The final separation runs::

    induction (purple) ‖ induction (orange) → positioning → exposure → craniotomy →
    dural opening → division of each shared vessel of this stage → brain separation →
    separation → [purple table ‖ orange table: dural repair → cranial reconstruction →
    scalp closure → transfer to intensive care]

An earlier stage of a staged separation stops after the vessel divisions and closes both
heads together on one table. Durations are ``base_min`` plus a term from the plan's
metrics (cut area per tissue in cm², diameter of each vessel in mm); the defaults below can
be edited in the roster file's ``phases:`` section.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from twinsep.errors import InputError

PURPLE, ORANGE = "purple", "orange"
TABLES = (PURPLE, ORANGE)

_ANAES = {"anaesthetist": 1, "anaesthetic_nurse": 1}

#: Phase defaults. ``needs``: shared roles (one team); ``per_twin``: roles needed once for
#: each twin before separation (colour-coded from induction); ``per_table``: roles needed
#: on each table after separation. ``area``: which cut area (cm²) scales the duration.
DEFAULT_PHASES: dict[str, Any] = {
    "induction": {"name": "Anaesthetic induction and lines", "base_min": 90, "per_twin": _ANAES},
    "positioning": {
        "name": "Positioning and navigation registration",
        "base_min": 60,
        "needs": {"neurosurgeon": 1, "scrub_nurse": 1, "circulating_nurse": 1},
        "per_twin": _ANAES,
    },
    "exposure": {
        "name": "Scalp incision and exposure",
        "base_min": 60,
        "area": "scalp",
        "min_per_cm2": 0.5,
        "needs": {
            "neurosurgeon": 1,
            "plastic_surgeon": 1,
            "scrub_nurse": 1,
            "circulating_nurse": 1,
        },
        "per_twin": _ANAES,
    },
    "craniotomy": {
        "name": "Craniotomy",
        "base_min": 60,
        "area": "bone",
        "min_per_cm2": 0.6,
        "needs": {
            "neurosurgeon": 2,
            "scrub_nurse": 1,
            "circulating_nurse": 1,
            "neurophysiologist": 1,
        },
        "per_twin": _ANAES,
    },
    "dural_opening": {
        "name": "Dural opening",
        "base_min": 30,
        "area": "dura",
        "min_per_cm2": 0.5,
        "needs": {
            "neurosurgeon": 2,
            "scrub_nurse": 1,
            "circulating_nurse": 1,
            "neurophysiologist": 1,
        },
        "per_twin": _ANAES,
    },
    "vessel_division": {
        "name": "Division of shared vessel",
        "base_min": 60,
        "min_per_mm": 15,
        "needs": {
            "neurosurgeon": 2,
            "scrub_nurse": 1,
            "circulating_nurse": 1,
            "neurophysiologist": 1,
        },
        "per_twin": _ANAES,
    },
    "brain_separation": {
        "name": "Brain separation",
        "base_min": 120,
        "area": "brain",
        "min_per_cm2": 3.0,
        "needs": {
            "neurosurgeon": 2,
            "scrub_nurse": 1,
            "circulating_nurse": 1,
            "neurophysiologist": 1,
        },
        "per_twin": _ANAES,
    },
    "separation": {
        "name": "Separation: one team becomes two",
        "base_min": 15,
        "needs": {
            "neurosurgeon": 2,
            "plastic_surgeon": 2,
            "scrub_nurse": 2,
            "circulating_nurse": 2,
        },
        "per_twin": _ANAES,
    },
    "dural_repair": {
        "name": "Dural repair",
        "base_min": 45,
        "area": "dura",
        "min_per_cm2": 0.5,
        "per_table": {
            "neurosurgeon": 1,
            "plastic_surgeon": 1,
            "scrub_nurse": 1,
            "circulating_nurse": 1,
            **_ANAES,
        },
    },
    "cranial_reconstruction": {
        "name": "Cranial reconstruction",
        "base_min": 120,
        "area": "bone",
        "min_per_cm2": 1.0,
        "per_table": {
            "neurosurgeon": 1,
            "plastic_surgeon": 1,
            "scrub_nurse": 1,
            "circulating_nurse": 1,
            **_ANAES,
        },
    },
    "scalp_closure": {
        "name": "Scalp closure",
        "base_min": 120,
        "area": "scalp",
        "min_per_cm2": 1.5,
        "per_table": {"plastic_surgeon": 1, "scrub_nurse": 1, "circulating_nurse": 1, **_ANAES},
    },
    "transfer_icu": {
        "name": "Transfer to intensive care",
        "base_min": 45,
        "per_table": {"circulating_nurse": 1, **_ANAES},
    },
    #: Used when the plan has no metrics.
    "defaults": {
        "area_cm2": {"scalp": 60.0, "bone": 50.0, "dura": 45.0, "brain": 30.0},
        "vessels": 2,
        "vessel_diameter_mm": 5.0,
    },
}

_PRE = ("positioning", "exposure", "craniotomy", "dural_opening")
_POST = ("dural_repair", "cranial_reconstruction", "scalp_closure", "transfer_icu")
_RESOLUTION_MIN = 5


@dataclass(frozen=True)
class Need:
    """People a phase needs: ``count`` with ``role`` for ``colour`` (a twin, or None)."""

    role: str
    colour: str | None
    count: int


@dataclass(frozen=True)
class Phase:
    """One phase with fixed times (minutes from the start of anaesthesia).

    ``table`` is purple or orange on the two tables after separation and None before (one
    team, one table); ``twin`` is the twin a pre-separation phase concerns (the inductions).
    """

    id: str
    kind: str
    name: str
    table: str | None
    twin: str | None
    start_min: int
    end_min: int
    needs: tuple[Need, ...]
    basis: str
    vessel: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "table": self.table,
            "twin": self.twin,
            "start_h": self.start_min / 60,
            "end_h": self.end_min / 60,
            "duration_h": (self.end_min - self.start_min) / 60,
            "needs": [
                {"role": n.role, "colour": n.colour, "count": n.count} for n in self.needs
            ],
            "basis": self.basis,
        }
        if self.vessel is not None:
            d["vessel"] = self.vessel
        return d


@dataclass(frozen=True)
class Operation:
    """The operation being scheduled and how it was derived from the plan."""

    stage: int
    n_stages: int
    final: bool
    phases: tuple[Phase, ...]
    vessels_done: tuple[Any, ...]
    notes: tuple[str, ...]

    @property
    def end_min(self) -> int:
        return max(p.end_min for p in self.phases)

    @property
    def separation_min(self) -> int | None:
        for p in self.phases:
            if p.kind == "separation":
                return p.end_min
        return None


def merged_defaults(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The phase defaults with the roster's ``phases:`` overrides applied key by key."""
    spec = copy.deepcopy(DEFAULT_PHASES)
    for kind, over in (overrides or {}).items():
        if kind not in spec:
            raise InputError(f"phases: unknown phase kind {kind!r} (expected {', '.join(spec)})")
        if not isinstance(over, dict):
            raise InputError(f"phases.{kind} must be a mapping")
        for key, value in over.items():
            if key in ("needs", "per_twin", "per_table", "area_cm2"):
                if not isinstance(value, dict):
                    raise InputError(f"phases.{kind}.{key} must be a mapping of role: count")
                spec[kind][key] = dict(value)
            else:
                spec[kind][key] = value
    for kind, s in spec.items():
        if kind == "defaults":
            continue
        for key in ("base_min", "min_per_cm2", "min_per_mm"):
            v = s.get(key, 0)
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise InputError(f"phases.{kind}.{key} must be a number >= 0, got {v!r}")
        for key in ("needs", "per_twin", "per_table"):
            for role, n in (s.get(key) or {}).items():
                if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                    raise InputError(f"phases.{kind}.{key}.{role} must be a whole number >= 0")
    return spec


# --- reading the plan ------------------------------------------------------------------
def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def _chosen_separation(sep: dict[str, Any]) -> dict[str, Any]:
    """The chosen alternative of ``plan["separation"]`` merged over the section itself."""
    chosen = sep.get("chosen")
    if isinstance(chosen, dict):
        return {**sep, **chosen}
    alts = sep.get("alternatives")
    if chosen is not None and isinstance(alts, list):
        for alt in alts:
            if not isinstance(alt, dict):
                continue
            if chosen in (alt.get("id"), alt.get("name"), alt.get("key")):
                return {**sep, **alt}
    return sep


def _vessel_info(plan: dict[str, Any], sep: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    """Known vessels to divide: id → {id, diameter_mm, source, ...}.

    The vessels crossing the chosen cut (``separation.crossing_vessels``, whose ``id`` the
    stages refer to) when known, else the shared vessels (``shared.vessels``).
    """
    out: dict[Any, dict[str, Any]] = {}
    for v in sep.get("crossing_vessels") or []:
        if not isinstance(v, dict) or "id" not in v:
            continue
        d = _num(v.get("equivalent_diameter_mm"))
        area = _num(v.get("cross_section_mm2"))
        if d is None and area is not None:
            d = 2 * math.sqrt(area / math.pi)
        info: dict[str, Any] = {"id": v["id"], "diameter_mm": d,
                                "source": "separation.crossing_vessels"}
        if area is not None:
            info["cross_section_mm2"] = area
        for key in ("vessel_id", "kept_by"):
            if key in v:
                info[key] = v[key]
        out[v["id"]] = info
    if out:
        return out
    shared = plan.get("shared") if isinstance(plan.get("shared"), dict) else {}
    for v in shared.get("vessels") or []:
        if isinstance(v, dict) and "id" in v:
            d = _num(v.get("max_diameter_mm"))
            out[v["id"]] = {"id": v["id"], "diameter_mm": d, "source": "shared.vessels"}
    return out


def _stage_list(sep: dict[str, Any]) -> list[dict[str, Any]]:
    """Operations of a staged separation as {stage, divided: [ids]}, in order."""
    raw = sep.get("stages")
    if raw is None and isinstance(sep.get("staging"), dict):
        raw = sep["staging"].get("stages")
    out = []
    for s in raw or []:
        if not isinstance(s, dict) or not isinstance(s.get("stage"), int):
            continue
        ids = s.get("divided")
        if not isinstance(ids, list):
            ids = [d.get("id") if isinstance(d, dict) else d for d in s.get("divide") or []]
        out.append({"stage": s["stage"], "divided": [i for i in ids if i is not None]})
    return sorted(out, key=lambda s: s["stage"])


def _areas(plan: dict[str, Any], sep: dict[str, Any], spec: dict, notes: list[str]) -> dict:
    defaults = spec["defaults"]["area_cm2"]
    cut = sep.get("cut_area_cm2")
    if isinstance(cut, dict) and any(_num(cut.get(t)) is not None for t in defaults):
        out = {}
        for t, dflt in defaults.items():
            v = _num(cut.get(t))
            out[t] = (v, "separation.cut_area_cm2") if v is not None else (dflt, "default")
        return out
    shared = plan.get("shared") if isinstance(plan.get("shared"), dict) else {}
    junction = _num(shared.get("junction_area_cm2"))
    if junction is not None:
        notes.append(
            "no cut areas in the plan: the junction area "
            f"({junction:.1f} cm2) stands for the scalp, bone and dura cuts"
        )
        out = {t: (junction, "shared.junction_area_cm2") for t in ("scalp", "bone", "dura")}
        brain = _num(shared.get("brain_contact_area_cm2"))
        out["brain"] = (
            (brain, "shared.brain_contact_area_cm2") if brain is not None
            else (defaults["brain"], "default")
        )
        return out
    notes.append("no cut areas in the plan: phase durations use the default areas")
    return {t: (v, "default") for t, v in defaults.items()}


def _round_up(minutes: float) -> int:
    return max(_RESOLUTION_MIN, _RESOLUTION_MIN * math.ceil(minutes / _RESOLUTION_MIN - 1e-9))


def _duration(spec: dict, areas: dict, diameter_mm: float | None = None) -> tuple[int, str]:
    base = float(spec.get("base_min", 0))
    if "area" in spec and spec.get("min_per_cm2"):
        area, source = areas[spec["area"]]
        minutes = base + float(spec["min_per_cm2"]) * area
        basis = (
            f"{base:g} min + {spec['min_per_cm2']:g} min/cm2 x {area:.1f} cm2 "
            f"{spec['area']} ({source})"
        )
    elif diameter_mm is not None and spec.get("min_per_mm"):
        minutes = base + float(spec["min_per_mm"]) * diameter_mm
        basis = f"{base:g} min + {spec['min_per_mm']:g} min/mm x {diameter_mm:.1f} mm"
    else:
        minutes, basis = base, f"{base:g} min (fixed)"
    return _round_up(minutes), basis


def _needs(spec: dict, *, twins: tuple[str, ...] = TABLES, table: str | None = None) -> list:
    out: list[Need] = []
    for role, n in sorted((spec.get("needs") or {}).items()):
        if n:
            out.append(Need(role, table, int(n)))
    for colour in twins:
        for role, n in sorted((spec.get("per_twin") or {}).items()):
            if n:
                out.append(Need(role, colour, int(n)))
    return out


def derive_operation(
    plan: dict[str, Any], overrides: dict[str, Any] | None = None, stage: int | None = None
) -> Operation:
    """Phases of one operation with fixed times.

    Parameters
    ----------
    plan : dict
        plan.json (may be nearly empty).
    overrides : dict, optional
        The roster's ``phases:`` section.
    stage : int, optional
        Which operation of a staged separation; default the final one.

    Raises
    ------
    InputError
        ``stage`` is not an operation of the plan, or the phase overrides are invalid.
    """
    spec = merged_defaults(overrides)
    notes: list[str] = []
    sep_raw = plan.get("separation") if isinstance(plan.get("separation"), dict) else {}
    sep = _chosen_separation(sep_raw)
    vessels = _vessel_info(plan, sep)
    stages = _stage_list(sep)
    numbers = [s["stage"] for s in stages] or [1]
    if stage is None:
        stage = numbers[-1]
    if stage not in numbers:
        raise InputError(f"--stage {stage}: the plan has operations {', '.join(map(str, numbers))}")
    final = stage == numbers[-1]
    done: list[Any] = []
    if stages:
        idx = numbers.index(stage)
        for s in stages[:idx]:
            done.extend(s.get("divided") or [])
        this = list(stages[idx].get("divided") or [])
        if final:  # the final operation divides whatever is left
            this += [v for v in vessels if v not in done and v not in this]
        if done:
            notes.append(
                f"stage {stage} of {len(stages)}: vessels {', '.join(map(str, done))} "
                "were divided in earlier operations"
            )
        else:
            notes.append(f"stage {stage} of {len(stages)}")
    else:
        this = list(vessels)
    dflt = spec["defaults"]
    todo: list[dict[str, Any]] = []
    for vid in this:
        info = dict(vessels.get(vid, {"id": vid, "diameter_mm": None, "source": "stages"}))
        if info.get("diameter_mm") is None:
            info["diameter_mm"] = float(dflt["vessel_diameter_mm"])
            info["diameter_source"] = "default"
        todo.append(info)
    if not vessels and not stages:
        n = int(dflt["vessels"])
        notes.append(
            f"no shared vessels in the plan: {n} divisions of "
            f"{float(dflt['vessel_diameter_mm']):g} mm vessels are assumed"
        )
        todo = [
            {"id": f"default-{i + 1}", "diameter_mm": float(dflt["vessel_diameter_mm"]),
             "source": "default"}
            for i in range(n)
        ]
    areas = _areas(plan, sep, spec, notes)

    phases: list[Phase] = []
    t = 0
    ind = spec["induction"]
    dur, basis = _duration(ind, areas)
    for colour in TABLES:
        phases.append(
            Phase(f"induction_{colour}", "induction", f"{ind['name']} ({colour} twin)", None,
                  colour, 0, dur, tuple(_needs(ind, twins=(colour,))), basis)
        )
    t = dur

    def add(pid: str, kind: str, name: str, vessel: dict | None = None) -> None:
        nonlocal t
        s = spec[kind]
        d, b = _duration(s, areas, vessel["diameter_mm"] if vessel else None)
        phases.append(Phase(pid, kind, name, None, None, t, t + d, tuple(_needs(s)), b, vessel))
        t += d

    for kind in _PRE:
        add(kind, kind, spec[kind]["name"])
    for v in todo:
        add(f"divide_vessel_{v['id']}", "vessel_division",
            f"{spec['vessel_division']['name']} {v['id']}", v)
    if final:
        add("brain_separation", "brain_separation", spec["brain_separation"]["name"])
        add("separation", "separation", spec["separation"]["name"])
        start = t
        for colour in TABLES:
            t = start
            for kind in _POST:
                s = spec[kind]
                d, b = _duration(s, areas)
                needs = [Need(r, colour, int(n)) for r, n in sorted(s.get("per_table", {}).items())
                         if n]
                phases.append(Phase(f"{kind}_{colour}", kind, f"{s['name']} ({colour} table)",
                                    colour, colour, t, t + d, tuple(needs), b))
                t += d
    else:
        # An earlier stage: both heads are closed together, anaesthesia stays per twin.
        per_twin_roles = set(ind.get("per_twin") or {})
        for kind in _POST:
            s = spec[kind]
            joined = {
                "needs": {r: n for r, n in s.get("per_table", {}).items()
                          if r not in per_twin_roles},
                "per_twin": {r: n for r, n in s.get("per_table", {}).items()
                             if r in per_twin_roles},
            }
            d, b = _duration(s, areas)
            phases.append(Phase(kind, kind, s["name"], None, None, t, t + d,
                                tuple(_needs(joined)), b))
            t += d
        notes.append("not the final operation: the twins stay joined and are closed together")
    return Operation(stage, len(stages) or 1, final, tuple(phases), tuple(done), tuple(notes))
