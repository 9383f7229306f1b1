"""The roster file: who is available, with which skills, for how long.

A roster is a YAML mapping with three sections (see ``examples/roster.yaml``)::

    settings:                  # optional; the values below are the defaults
      handover_overlap_min: 15 # incoming and outgoing person overlap by this long (min)
      min_break_min: 60        # shortest break between two stints of one person (min)
      slot_min: 60             # hand-overs happen on this grid and at phase boundaries (min)
    people:                    # required, one entry per person
      - person: Ada Example
        role: neurosurgeon     # main role
        skills: [neurosurgeon] # roles this person may take (main role added if missing)
        max_continuous_h: 8    # longest stint without a break (h)
        earliest_h: 0          # first hour on duty, from the start of anaesthesia (h)
        latest_h: 24           # last hour on duty (h)
    phases: {...}              # optional overrides of the phase defaults (see phases.py)

The file's shape is a frozen pydantic model per mapping (:class:`RosterFile`,
:class:`RulesFile`, :class:`PersonFile`; unknown keys refused), read with
:func:`twinsep.settings.read_mapping` like every settings file; an error is one line naming
the file and the key (``roster.yaml: setting people.3.max_continuous_h: Field required
(person 'Ada Example')``). Roles are free names, not a fixed list: the ``phases:`` section
may ask for roles of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, ValidationError

from twinsep import settings as _settings
from twinsep.errors import InputError


@dataclass(frozen=True)
class Person:
    """One member of the operating team.

    Attributes
    ----------
    name : str
        Unique name as written in the roster.
    role : str
        Main role (listed first in the run sheets).
    skills : tuple[str, ...]
        Every role the person may take, main role first.
    max_continuous_min : int
        Longest stint without a break, hand-over overlap included (min).
    earliest_min, latest_min : int
        Window on duty, from the start of anaesthesia (min).
    """

    name: str
    role: str
    skills: tuple[str, ...]
    max_continuous_min: int
    earliest_min: int
    latest_min: int


@dataclass(frozen=True)
class Settings:
    """Rules of the schedule (all in minutes)."""

    handover_overlap_min: int = 15
    min_break_min: int = 60
    slot_min: int = 60

    def as_dict(self) -> dict[str, int]:
        return {
            "handover_overlap_min": self.handover_overlap_min,
            "min_break_min": self.min_break_min,
            "slot_min": self.slot_min,
        }


@dataclass(frozen=True)
class Roster:
    """A parsed roster file."""

    people: tuple[Person, ...]
    settings: Settings = field(default_factory=Settings)
    phases: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def person(self, name: str) -> Person:
        for p in self.people:
            if p.name == name:
                return p
        raise KeyError(name)


# --- the roster file -------------------------------------------------------------------
#: A finite number (an int or a float; not a string, not a boolean) of at least 0.
Amount = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
#: A name: a string, stripped, not empty.
Name = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class RulesFile(_settings.Settings):
    """``settings:``: the rules of the schedule (min; rounded to whole minutes)."""

    handover_overlap_min: Amount = Settings.handover_overlap_min
    min_break_min: Amount = Settings.min_break_min
    slot_min: Annotated[Amount, Field(ge=5)] = Settings.slot_min

    def rules(self) -> Settings:
        return Settings(**{k: round(v) for k, v in self.model_dump().items()})


class PersonFile(_settings.Settings):
    """One entry of ``people:`` (hours from the start of anaesthesia)."""

    person: Name
    role: Name
    skills: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = ()
    max_continuous_h: Annotated[Amount, Field(gt=0)]
    earliest_h: Amount = 0.0
    latest_h: Amount = 48.0


class RosterFile(_settings.Settings):
    """The shape of a roster file (see the module's docstring)."""

    settings: RulesFile | None = None
    people: Annotated[list[PersonFile], Field(min_length=1)]
    phases: dict[str, Any] | None = None


#: The model of each mapping of the file, by its key (an entry of ``people`` as ``0``).
_SECTIONS: dict[tuple, type[BaseModel]] = {
    (): RosterFile, ("settings",): RulesFile, ("people", 0): PersonFile,
}
_WORDS = {(): "section", ("settings",): "setting", ("people", 0): "key"}


def _error(source: str, loc: tuple, msg: str, data: Any = None) -> InputError:
    """``{source}: setting {key}: {msg}``, with the person's name for an entry of people."""
    line = f"{source}: setting {'.'.join(map(str, loc))}: {msg}"
    if len(loc) > 2 and loc[0] == "people" and isinstance(loc[1], int) and isinstance(data, dict):
        people = data.get("people")
        entry = people[loc[1]] if isinstance(people, list) and loc[1] < len(people) else None
        name = entry.get("person") if isinstance(entry, dict) else None
        if isinstance(name, str) and name.strip():
            line += f" (person {name.strip()!r})"
    return InputError(line)


def _message(exc: ValidationError, source: str, data: Any) -> InputError:
    """The first error in the settings convention: an unknown key first (a misspelt one is
    also a missing one), with the keys expected there."""
    errors = exc.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(first["loc"])
    parent = tuple(0 if isinstance(p, int) else p for p in loc[:-1])
    msg = first["msg"]
    if first["type"] == "extra_forbidden" and parent in _SECTIONS:
        msg = (f"unknown {_WORDS[parent]} "
               f"(expected {', '.join(_SECTIONS[parent].model_fields)})")
    elif first["type"] == "extra_forbidden":
        msg = "unknown setting"
    elif first["type"] in ("model_type", "dict_type"):
        msg = "must be a mapping"
    elif first["type"] == "too_short" and loc == ("people",):
        msg = "must be a non-empty list (one entry per person)"
    return _error(source, loc, msg, data)


def parse_roster(data: Any, source: str = "roster") -> Roster:
    """Check a roster mapping (as read from YAML) and turn it into a :class:`Roster`.

    Raises
    ------
    InputError
        With one line naming the file, the key and what is wrong, e.g.
        ``roster.yaml: setting people.3.max_continuous_h: Field required (person 'Ada')``.
    """
    if not isinstance(data, dict):
        raise InputError(f"{source}: a roster must be a mapping with a 'people' list")
    try:
        shape = RosterFile.model_validate(data)
    except ValidationError as exc:
        raise _message(exc, source, data) from None
    people: list[Person] = []
    seen: set[str] = set()
    for i, entry in enumerate(shape.people):
        if entry.person in seen:
            raise _error(source, ("people", i, "person"), f"{entry.person!r} is listed twice")
        seen.add(entry.person)
        max_cont = round(entry.max_continuous_h * 60)
        if max_cont <= 0:
            raise _error(source, ("people", i, "max_continuous_h"),
                         "must be positive (at least one minute)", data)
        earliest = round(entry.earliest_h * 60)
        latest = round(entry.latest_h * 60)
        if latest <= earliest:
            raise _error(source, ("people", i, "latest_h"), "must be after earliest_h", data)
        skills = [entry.role] + [s.strip() for s in entry.skills if s.strip() != entry.role]
        people.append(
            Person(entry.person, entry.role, tuple(dict.fromkeys(skills)), max_cont, earliest,
                   latest)
        )
    phases = shape.phases or {}
    from twinsep.schedule.phases import merged_defaults

    try:
        merged_defaults(phases)
    except InputError as exc:
        raise InputError(f"{source}: setting {exc}") from None
    rules = (shape.settings or RulesFile()).rules()
    return Roster(tuple(people), rules, phases, source)


def load_roster(path: str | Path) -> Roster:
    """Read and check a roster YAML (or JSON) file.

    Raises
    ------
    InputError
        The file is missing, is not YAML or does not describe a roster (one line naming
        the file and the key).
    """
    path = Path(path)
    return parse_roster(_settings.read_mapping(path, "roster"), str(path))
