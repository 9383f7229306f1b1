"""Phantom generation time (pytest-benchmark).

Run with ``pytest benchmarks/bench_phantom.py --benchmark-enable`` (slow: about a
minute per round at 0.5 mm).
"""

from __future__ import annotations

import pytest

from twinsep.phantom import PhantomSpec, make_phantom
from twinsep.phantom.anatomy import template


@pytest.mark.parametrize("spacing_mm", [1.0, 0.5])
def test_phantom_generation(benchmark, spacing_mm):
    template()  # load the brain template outside the timing
    spec = PhantomSpec(spacing=(spacing_mm,) * 3)
    ph = benchmark.pedantic(make_phantom, args=(spec,), rounds=1, iterations=1)
    assert ph.truth["shared_vessel"]["crosses"]
