"""One settings convention for every stage.

Every stage has one frozen pydantic model (:class:`Settings`, ``extra="forbid"``): its
fields are the stage's options, with units in their names (``corridor_mm``). The defaults
live in one packaged file, ``twinsep/data/defaults.yaml``, one section per stage, each value
with its source; a model takes its defaults from there with :func:`default`.

Overrides come from a settings file (``--settings FILE``: ``{stage: {key: value}}``) or
from assignments (``--set separate.corridor_mm=12``); a bad key or value is an
:class:`~twinsep.errors.InputError` that names the file (or option) and the key:

>>> parse_assignments(["separate.corridor_mm=12", "models.scale=0.5"])
{'separate': {'corridor_mm': 12}, 'models': {'scale': 0.5}}
>>> default("separate.corridor_mm")
10.0
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from twinsep.deid import looks_like_uid, pseudonym
from twinsep.errors import InputError

DEFAULTS_FILE = "data/defaults.yaml"


class Settings(BaseModel):
    """Base of every settings model: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


M = TypeVar("M", bound=BaseModel)


@lru_cache(maxsize=1)
def _defaults_document() -> dict[str, Any]:
    from importlib.resources import files

    import yaml

    return yaml.safe_load(files("twinsep").joinpath(DEFAULTS_FILE).read_text(encoding="utf-8"))


def defaults(section: str = "") -> Any:
    """The packaged defaults under the dotted key ``section`` (a copy; all when empty)."""
    node: Any = _defaults_document()
    for part in filter(None, section.split(".")):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"{DEFAULTS_FILE} has no {section!r}")
        node = node[part]
    return copy.deepcopy(node)


def default(key: str) -> Any:
    """One packaged default, e.g. ``default("separate.corridor_mm")``."""
    return defaults(key)


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in, nested mappings key by key."""
    out = dict(base)
    for k, v in over.items():
        old = out.get(k)
        out[k] = merge(old, v) if isinstance(v, Mapping) and isinstance(old, Mapping) else v
    return out


def read_mapping(path: Path, what: str = "settings") -> dict[str, Any]:
    """A YAML or JSON file holding one mapping, or an :class:`InputError` naming it."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such {what} file")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}: cannot read {what} (not valid YAML{at}: {problem})") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: cannot read {what} ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: {what} must be a mapping of keys to values")
    return data


def parse_assignments(items: Iterable[str], option: str = "--set") -> dict[str, Any]:
    """``["stage.key=value", ...]`` as a nested mapping; values are read as YAML scalars
    or lists (``12``, ``true``, ``[1, 2]``, ``null``)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        parts = [p.strip() for p in key.split(".")]
        if not sep or len(parts) < 2 or not all(parts):
            raise InputError(f"{option} {item!r}: expected STAGE.KEY=VALUE, "
                             "e.g. separate.corridor_mm=12")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(f"{option} {item!r}: {part} is set twice")
        node[parts[-1]] = value
    return out


def validation_message(exc: ValidationError, source: str, prefix: str = "") -> str:
    """One line naming where the bad setting came from, its key and what is wrong."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    key = ".".join(p for p in (prefix, loc) if p)
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown setting"
    return f"{source}: setting {key}: {msg}"


def validate(model: type[M], data: Mapping[str, Any], *, source: str, prefix: str = "") -> M:
    """``model`` from ``data``, or an :class:`InputError` naming ``source`` and the key."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise InputError(validation_message(exc, source, prefix)) from None


def file_names(value: Any) -> Any:
    """``value`` (settings as JSON, or with Paths) with every path reduced to its file name
    (a folder to ``"(folder)"``) and every DICOM UID to its pseudonym
    (:func:`twinsep.deid.pseudonym`): folders often carry a patient's name, UIDs identify
    the study, and the same input must give the same plan."""
    if isinstance(value, dict):
        return {k: file_names(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [file_names(v) for v in value]
    if isinstance(value, str) and looks_like_uid(value):
        return pseudonym(value)
    if isinstance(value, Path) or (isinstance(value, str) and ("/" in value or "\\" in value)):
        path = Path(value)
        return "(folder)" if path.is_dir() else path.name
    return value


def changed(settings: BaseModel, baseline: BaseModel | None = None) -> dict[str, Any]:
    """The fields of ``settings`` that differ from ``baseline`` (default: the model's
    defaults), as JSON values; nested models give dotted keys."""
    base = (baseline or type(settings)()).model_dump(mode="json")
    now = settings.model_dump(mode="json")
    out: dict[str, Any] = {}

    def walk(a: Any, b: Any, key: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{key}.{k}" if key else k)
        elif a != b:
            out[key] = b

    walk(base, now, "")
    return out


__all__ = [
    "DEFAULTS_FILE",
    "Settings",
    "changed",
    "default",
    "defaults",
    "file_names",
    "merge",
    "parse_assignments",
    "read_mapping",
    "validate",
    "validation_message",
]
