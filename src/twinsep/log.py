"""Standard logging into the case's log, ``CASE/.twinsep/twinsep.log``.

Every module logs to ``logging.getLogger(__name__)`` (all below the ``twinsep`` logger).
While a stage runs on a case, :func:`case_log` adds a handler that appends those records
to the case's log: versions, settings, notes, warnings and timings. File paths are logged
by their file name only (folder names often carry a patient's name).
"""

from __future__ import annotations

import contextlib
import logging
import platform
from collections.abc import Iterator
from pathlib import Path

from twinsep.casefolder import Case, is_case_folder

LOG_FILE = Path(".twinsep") / "twinsep.log"
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

logger = logging.getLogger("twinsep")


def versions() -> dict[str, str]:
    """twinsep, Python and the main libraries' versions."""
    from importlib.metadata import PackageNotFoundError, version

    from twinsep import __version__

    out = {"twinsep": __version__, "python": platform.python_version()}
    for name in ("numpy", "scipy", "SimpleITK", "scikit-image", "PyMaxflow", "trimesh"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


@contextlib.contextmanager
def case_log(case: Case) -> Iterator[logging.Logger]:
    """Append the ``twinsep`` log records to ``CASE/.twinsep/twinsep.log`` meanwhile.

    Nested uses on the same case add one handler only. Nothing is written into a folder
    that is not a case folder yet (no twinsep marker): twinsep never adds files to a folder
    it did not make.
    """
    path = (case.root / LOG_FILE).absolute()
    mine = [h for h in logger.handlers
            if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path]
    if mine or not is_case_folder(case.root):
        yield logger
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.DEBUG)
    old_level = logger.level
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(old_level)


__all__ = ["LOG_FILE", "case_log", "logger", "versions"]
