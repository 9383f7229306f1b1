"""Colours of the model layers (core: the models, the viewer and the glTF writer use them).

Twin A is purple, twin B orange (:data:`twinsep.labels.TWIN_COLOURS`); each tissue is a
shade of its twin's colour (scalp lightest, bone pale, dura light, brain the full colour,
vessels dark); shared vessels are red and the cut surface is a translucent light grey.
Colours are sRGB 0-255 here and in ``manifest.json``; the GLB gets linear factors
(:func:`srgb_to_linear`), as glTF requires.
"""

from __future__ import annotations

from twinsep.labels import TWIN_COLOURS

RGB = tuple[int, int, int]

#: How each tissue shade is made from its twin's colour: (mix with white, mix with black).
TISSUE_SHADES: dict[str, tuple[float, float]] = {
    "scalp": (0.55, 0.0),
    "bone": (0.75, 0.0),
    "dura": (0.35, 0.0),
    "brain": (0.0, 0.0),
    "vessel": (0.0, 0.45),
}

#: Default opacity per layer kind (1 = opaque); the cut surface is translucent.
OPACITY: dict[str, float] = {"tissue": 1.0, "shared-vessel": 1.0, "cut-surface": 0.45}

#: Colour of the separation (cut) surface.
CUT_SURFACE_RGB: RGB = (235, 235, 240)

#: Colours of the separated twins' reconstruction (:mod:`twinsep.models.separated`): the
#: cranial implant light blue, the tissue expanders pale green (silicone), the wound red.
IMPLANT_RGB: RGB = (90, 200, 235)
EXPANDER_RGB: RGB = (150, 225, 185)
WOUND_RGB: RGB = (215, 40, 50)


def shade(base: RGB, white: float = 0.0, black: float = 0.0) -> RGB:
    """Mix ``base`` with white by ``white`` and then with black by ``black`` (0-1)."""
    rgb = [c + (255 - c) * white for c in base]
    rgb = [c * (1.0 - black) for c in rgb]
    return tuple(round(min(max(c, 0.0), 255.0)) for c in rgb)  # type: ignore[return-value]


def tissue_colour(twin: str, tissue: str) -> RGB:
    """sRGB colour (0-255) of ``tissue`` of twin ``'A'`` or ``'B'``."""
    white, black = TISSUE_SHADES[tissue]
    return shade(TWIN_COLOURS[twin], white, black)


def shared_vessel_colour() -> RGB:
    """sRGB colour (0-255) of the shared vessels (red)."""
    return TWIN_COLOURS["shared"]


def srgb_to_linear(rgb: RGB) -> tuple[float, float, float]:
    """Linear RGB factors (0-1) of an sRGB colour (0-255), for glTF ``baseColorFactor``."""
    out = []
    for c in rgb:
        s = c / 255.0
        out.append(s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4)
    return tuple(out)  # type: ignore[return-value]
