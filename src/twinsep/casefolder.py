"""The case folder: where every stage reads its inputs and writes its results.

Layout (see ``docs/case-format.md``)::

    CASE/
      scan.nii.gz            the scan, on its own grid (written by ``ingest``)
      case.json              source description, geometry, hashes (no PHI unless --keep-phi)
      labels/tissues.nii.gz  tissue codes on the scan's grid (``segment``)
      labels/twins.nii.gz    owner codes 0/1/2 on the scan's grid (``identify``, ``separate``)
      plan.json              the plan, validated against ``schema/plan.schema.json``
      figures/               PNG figures
      models/  viewer/  report.html  report.pdf

Writes are atomic: a file is written beside its target and renamed, a new case folder is
built in a temporary sibling folder and renamed at the end, so a failure leaves nothing
half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinsep import __version__
from twinsep.errors import InputError

#: Version of the plan.json format; bump on purpose when the public interface changes.
PLAN_SCHEMA_VERSION = "1.1.0"

#: Wall time and memory of each stage of the last plan, beside plan.json (which holds no
#: times, so that it is byte-identical for the same input and settings).
TIMINGS_FILE = Path("timings.json")


@dataclass(frozen=True)
class Case:
    """Paths of one case folder."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def scan(self) -> Path:
        return self.root / "scan.nii.gz"

    @property
    def case_json(self) -> Path:
        return self.root / "case.json"

    @property
    def labels(self) -> Path:
        return self.root / "labels"

    @property
    def tissues(self) -> Path:
        return self.labels / "tissues.nii.gz"

    @property
    def twins(self) -> Path:
        return self.labels / "twins.nii.gz"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def viewer(self) -> Path:
        return self.root / "viewer"

    def require(self, *paths: Path, hint: str = "") -> None:
        """Raise :class:`InputError` naming the first missing path."""
        if not self.root.is_dir():
            raise InputError(f"{self.root}: not a case folder (run `twinsep ingest` first)")
        for p in paths:
            if not p.exists():
                rel = p.relative_to(self.root)
                why = f" ({hint})" if hint else ""
                raise InputError(f"{self.root}: {rel} is missing{why}")


# --- deterministic JSON ----------------------------------------------------------------
def _clean(obj: Any, ndigits: int) -> Any:
    """Round floats and turn numpy scalars/arrays, tuples and Paths into plain JSON."""
    if isinstance(obj, dict):
        return {str(k): _clean(v, ndigits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v, ndigits) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, str):  # numpy scalar or array
        return _clean(obj.tolist(), ndigits)
    if isinstance(obj, bool) or obj is None or isinstance(obj, int | str):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        r = round(obj, ndigits)
        return 0.0 if r == 0 else r
    if hasattr(obj, "model_dump"):  # pydantic
        return _clean(obj.model_dump(mode="json"), ndigits)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def dumps(obj: Any, ndigits: int = 6) -> str:
    """Deterministic JSON text: sorted keys, floats rounded to ``ndigits``, newline at end."""
    return json.dumps(_clean(obj, ndigits), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_text_atomic(path: Path, text: str | bytes) -> None:
    """Write a file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode() if isinstance(text, str) else text)
        except OSError as exc:  # name the file (a full disk says no file name)
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_volume(volume, path: Path) -> None:
    """Write an image beside ``path`` (format from the suffix) and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".nii.gz"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        volume.write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, obj: Any) -> None:
    """Write deterministic JSON atomically."""
    write_text_atomic(path, dumps(obj))


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


#: Version of the case folder format (docs/case-format.md), written into its marker.
CASE_FORMAT_VERSION = "1.1.0"

#: The marker that makes a folder a case folder: twinsep counts a folder as its own (to
#: update or replace) only when this file says twinsep made it.
MARKER = Path(".twinsep/case-format.json")

#: The top-level entries twinsep writes into a case folder (docs/case-format.md). A
#: re-ingest replaces these and nothing else: a user's own files in the folder stay.
CASE_ENTRIES = ("scan.nii.gz", "case.json", "labels", "plan.json", "timings.json",
                "figures", "models", "schedule", "viewer", "report.html", "report.pdf",
                ".twinsep")

_FOLDER_KINDS = {"case": "case folder", "phantom": "phantom folder"}


def folder_kind(root: Path) -> str | None:
    """``"case"`` or ``"phantom"`` when twinsep's marker says it made ``root``, else None."""
    try:
        data = read_json(Path(root) / MARKER)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("made_by") != "twinsep":
        return None
    kind = data.get("kind")
    return kind if kind in _FOLDER_KINDS else None


def _legacy_case(root: Path) -> bool:
    try:
        info = read_json(root / "case.json")
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("created_by") == "twinsep ingest"


def is_case_folder(root: Path) -> bool:
    """Whether ``root`` is a case folder twinsep made (it holds twinsep's marker)."""
    return folder_kind(root) == "case"


def write_marker(root: Path, kind: str = "case") -> None:
    """Write the marker that makes ``root`` a twinsep folder of ``kind``."""
    write_json(Path(root) / MARKER, {"made_by": "twinsep", "kind": kind,
                                     "case_format_version": CASE_FORMAT_VERSION})


def writable(path: Path) -> bool:
    """Whether ``path`` (a folder) may be written: permitted, and not marked read-only
    (the mode bits count even for root, who may write anywhere)."""
    try:
        return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_output_folder(out: Path, *, kind: str = "case", overwrite: bool = False,
                        inputs: tuple[Path, ...] = ()) -> None:
    """Refuse an ``--out`` twinsep may not write (:class:`InputError`, nothing written).

    Refused: a file; a non-empty folder twinsep did not make (whatever ``overwrite``
    says); one of ``kind`` without ``overwrite``; a read-only folder or parent; a folder
    inside one of ``inputs`` or holding one of them.
    """
    out = Path(out)
    what = _FOLDER_KINDS[kind]
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder (choose another --out)")
    for src in inputs:
        src = Path(src)
        if src.exists() and _inside(src, out):
            raise InputError(f"{out}: holds the input {src.name}; write the {what} "
                             "elsewhere (twinsep never writes beside its input)")
        if src.exists() and src.is_dir() and _inside(out, src):
            raise InputError(f"{out}: lies inside the input folder {src.name}; write the "
                             f"{what} elsewhere (twinsep never writes into its input)")
    if out.is_dir():
        if not writable(out):
            raise InputError(f"{out}: the folder is read-only (choose another --out)")
        if any(out.iterdir()):
            mine = folder_kind(out)
            if mine != kind:
                made = (f"a twinsep {_FOLDER_KINDS[mine]}" if mine else
                        "a case of an older twinsep (before case format "
                        f"{CASE_FORMAT_VERSION}; plan it into a new folder)"
                        if _legacy_case(out) else "not made by twinsep")
                raise InputError(f"{out}: folder is not empty and is {made} (choose "
                                 "another --out; twinsep never deletes files it did not "
                                 "write)")
            if not overwrite:
                raise InputError(f"{out}: already a twinsep {what} (use --overwrite to "
                                 "replace it, or choose another --out)")
        return
    parent = next((p for p in out.parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not writable(parent):
        raise InputError(f"{out}: cannot create it, {parent} is not a writable folder")


@contextlib.contextmanager
def atomic_output_dir(out: Path, *, overwrite: bool = False, kind: str = "case",
                      entries: tuple[str, ...] = CASE_ENTRIES,
                      inputs: tuple[Path, ...] = ()) -> Iterator[Path]:
    """Build a twinsep folder in a temporary folder and move it into ``out`` on success.

    ``out`` is checked first (:func:`check_output_folder`); a symlinked ``out`` is
    written through to its target. On success, ``entries`` already in ``out`` are
    replaced by the new ones, nothing else in ``out`` is touched, and the marker of
    ``kind`` is written. On any exception nothing is left beyond what was there before.
    """
    out = Path(out).expanduser().absolute()
    check_output_folder(out, kind=kind, overwrite=overwrite, inputs=inputs)
    out = out.resolve()
    with _made_folders(out) as made:
        work = out / MARKER.parent
        work_made = not work.exists()
        work.mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="new-", dir=work))
        try:
            yield tmp
            write_marker(tmp, kind)
            _swap_in(tmp, out, entries)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if work_made:
                shutil.rmtree(work, ignore_errors=True)
            raise
        made.clear()  # keep the folders made for ``out``


def _swap_in(new: Path, out: Path, entries: tuple[str, ...]) -> None:
    """Replace ``entries`` of ``out`` by those of ``new`` (a folder inside ``out/.twinsep``),
    moving the old ones aside first so that a failure can put them back."""
    work = out / MARKER.parent
    old = Path(tempfile.mkdtemp(prefix="old-", dir=work))
    moved: list[tuple[Path, Path]] = []
    try:
        for name in entries:
            src = out / name
            if name == MARKER.parent.name:
                for child in sorted(src.iterdir()):
                    if child not in (new, old):
                        moved.append((child, old / f".twinsep-{child.name}"))
            elif src.exists() or src.is_symlink():
                moved.append((src, old / name))
        for src, dst in moved:
            os.replace(src, dst)
        for child in sorted(new.iterdir()):
            dst = out / child.name
            if child.name == MARKER.parent.name:
                for inner in sorted(child.iterdir()):
                    os.replace(inner, dst / inner.name)
            else:
                os.replace(child, dst)
    except BaseException:
        for src, dst in reversed(moved):
            with contextlib.suppress(OSError):
                os.replace(dst, src)
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(new, ignore_errors=True)


@contextlib.contextmanager
def _made_folders(path: Path) -> Iterator[list[Path]]:
    """Create ``path`` and its missing parents; remove those made (if still empty) when
    the block fails or leaves the list it yields non-empty."""
    made = [p for p in (path, *path.parents) if not p.exists()][::-1]
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield made
    finally:
        for p in reversed(made):
            with contextlib.suppress(OSError):
                p.rmdir()


# --- one writer per case ------------------------------------------------------------------
_HELD: dict[Path, int] = {}


@contextlib.contextmanager
def case_lock(root: Path) -> Iterator[None]:
    """Hold the case folder ``root`` for one twinsep process (an exclusive ``flock`` on the
    folder itself, so nothing is written for it); re-entrant within the process.

    A folder that does not exist yet is created for the lock and removed again if it is
    still empty at the end (a refused first run leaves nothing).

    Raises
    ------
    InputError
        Another twinsep process holds the case.
    """
    import fcntl

    root = Path(root).expanduser().absolute().resolve()
    if root in _HELD:
        _HELD[root] += 1
        try:
            yield
        finally:
            _HELD[root] -= 1
        return
    if root.exists() and not root.is_dir():
        yield  # not a folder: the stage's own check says so
        return
    parent = next((p for p in root.parents if p.exists()), None)
    if not root.exists() and (parent is None or not writable(parent)):
        yield  # cannot be created: the stage's own check says so
        return
    with _made_folders(root) as made:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(f"{root}: another twinsep command is working on this case; "
                                 "wait for it to finish, then run this again") from None
            _HELD[root] = 1
            try:
                yield
            finally:
                del _HELD[root]
        finally:
            os.close(fd)
        if any(root.iterdir()):
            made.clear()


def load_timings(case: Case) -> dict:
    """``CASE/timings.json``, the wall times of the last plan (empty when there is none)."""
    p = case.root / TIMINGS_FILE
    try:
        return read_json(p) if p.exists() else {}
    except (OSError, ValueError):
        return {}


# --- hashes ----------------------------------------------------------------------------
def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_array(array) -> str:
    """Hash of an array's dtype, shape and bytes (independent of file compression)."""
    import numpy as np

    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


# --- plan.json -------------------------------------------------------------------------
def schema() -> dict:
    """The JSON Schema of plan.json."""
    from importlib.resources import files

    return json.loads(files("twinsep").joinpath("schema/plan.schema.json").read_text())


def validate_plan(plan: dict) -> None:
    """Raise ``jsonschema.ValidationError`` if ``plan`` does not follow the schema."""
    import jsonschema

    jsonschema.validate(json.loads(dumps(plan)), schema())


def load_plan(case: Case) -> dict:
    """plan.json of ``case``, or a new empty plan."""
    if case.plan.exists():
        return read_json(case.plan)
    return {"schema_version": PLAN_SCHEMA_VERSION, "twinsep_version": __version__}


def update_plan(case: Case, **sections: Any) -> dict:
    """Set top-level sections of plan.json, validate and write it atomically."""
    plan = load_plan(case)
    plan["schema_version"] = PLAN_SCHEMA_VERSION
    plan["twinsep_version"] = __version__
    for key, value in sections.items():
        plan[key] = json.loads(dumps(value))
    validate_plan(plan)
    write_json(case.plan, plan)
    return plan
