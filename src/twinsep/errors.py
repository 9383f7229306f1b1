"""Errors that the command line turns into one clear line and exit code 2."""

from __future__ import annotations

import errno
from pathlib import Path


class InputError(Exception):
    """Bad or unusable input (not an image, truncated file, wrong label map, ...).

    The message is shown to the user as one line; the command exits with code 2.
    """


class NotConjoinedError(Exception):
    """The two heads do not touch; carries the closest distance in mm."""

    def __init__(self, distance_mm: float):
        super().__init__(f"not conjoined: two separate heads {distance_mm:.1f} mm apart at "
                         "the closest")
        self.distance_mm = distance_mm


#: Errors of the machine, not of twinsep: a full disk, a file-size or quota limit, a
#: read-only file system, a permission refused.
_ENVIRONMENT_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG", "EIO", "EROFS", "EACCES",
                                      "EPERM", "EMFILE", "ENFILE")
    if hasattr(errno, name)
)


def environment_error(exc: BaseException) -> InputError | None:
    """The one-line :class:`InputError` for an error of the machine (disk full, read-only,
    permission), or None for any other exception.

    >>> import errno
    >>> print(environment_error(OSError(errno.ENOSPC, "No space left on device", "/c/x.nii")))
    cannot write x.nii: No space left on device (free some space or choose another --out)
    """
    if not isinstance(exc, OSError) or exc.errno not in _ENVIRONMENT_ERRNOS:
        return None
    name = Path(str(exc.filename)).name if exc.filename else "the output"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what, fix = "use", "check the permissions or choose another --out"
    else:
        what, fix = "write", "free some space or choose another --out"
    return InputError(f"cannot {what} {name}: {exc.strerror or exc} ({fix})")
