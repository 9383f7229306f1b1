"""Realistic infant craniopagus phantoms with ground truth.

>>> from twinsep.phantom import PhantomSpec, make_phantom, write_phantom
>>> ph = make_phantom(PhantomSpec(spacing=(2.0, 2.0, 2.0)))   # doctest: +SKIP
>>> write_phantom(ph, Path("case"))                             # doctest: +SKIP
"""

from __future__ import annotations

from twinsep.phantom.build import Phantom, make_phantom, write_phantom
from twinsep.phantom.spec import PhantomSpec

__all__ = ["Phantom", "PhantomSpec", "make_phantom", "write_phantom"]
