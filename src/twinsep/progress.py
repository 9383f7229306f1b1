"""One progress type for every stage: ``progress(message, fraction)``.

A stage reports what it is doing (a short message) and how far it is (a fraction in
[0, 1]). A long sub-step maps its own 0..1 into a part of the stage's range with
:func:`within`:

>>> seen = []
>>> report = lambda message, fraction: seen.append((message, round(fraction, 2)))
>>> cut = within(report, 0.2, 0.6)
>>> cut("min cut", 0.5)
>>> seen
[('min cut', 0.4)]

The command line adapts this type once to a Rich progress bar (``twinsep.cli``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

#: ``progress(message, fraction)``: what is being done and how far (0..1) the caller is.
Progress = Callable[[str, float], None]

T = TypeVar("T")


def silent(message: str, fraction: float) -> None:
    """A progress callback that shows nothing."""


def within(progress: Progress | None, start: float, stop: float) -> Progress:
    """A progress callback whose 0..1 maps onto ``start..stop`` of ``progress``.

    Fractions outside 0..1 are clipped, so a sub-step can never move the bar backwards
    past its start or beyond its stop.
    """
    if progress is None:
        return silent
    span = stop - start

    def report(message: str, fraction: float) -> None:
        progress(message, start + span * min(max(float(fraction), 0.0), 1.0))

    return report


def counted(progress: Progress | None, message: str, items: Iterable[T],
            total: int) -> Iterator[T]:
    """Yield ``items`` and report ``message (i/total)`` with the fraction done."""
    report = progress or silent
    for i, item in enumerate(items):
        report(f"{message} ({i + 1}/{total})", i / max(total, 1))
        yield item
    report(message, 1.0)


__all__ = ["Progress", "counted", "silent", "within"]
