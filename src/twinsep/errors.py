"""Errors that the command line turns into one clear line and exit code 2."""

from __future__ import annotations


class InputError(Exception):
    """Bad or unusable input (not an image, truncated file, wrong label map, ...).

    The message is shown to the user as one line; the command exits with code 2.
    """


class NotConjoinedError(Exception):
    """The two heads do not touch; carries the closest distance in mm."""

    def __init__(self, distance_mm: float):
        super().__init__(f"not conjoined: the heads are {distance_mm:.1f} mm apart at the closest")
        self.distance_mm = distance_mm
