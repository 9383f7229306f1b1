"""Junction figure: colours present, deterministic bytes, oblique grids."""

from __future__ import annotations

import pytest
from matplotlib.colors import rgb_to_hsv
from matplotlib.image import imread

from twinsep.identify.figures import junction_figure
from twinsep.identify.shared import measure_shared


def _hues(png):
    img = imread(png)[..., :3]
    hsv = rgb_to_hsv(img)
    sat = hsv[..., 1] > 0.25
    h = hsv[..., 0] * 360
    purple = sat & (h > 265) & (h < 320)
    orange = sat & (h > 20) & (h < 45)
    red = sat & ((h < 10) | (h > 345)) & (hsv[..., 2] > 0.5)
    return purple.sum(), orange.sum(), red.sum()


@pytest.mark.parametrize("euler", [None, (20, 30, 10)], ids=["axis-aligned", "oblique"])
def test_junction_figure(box_pair, tmp_path, euler):
    tissues, owner = box_pair((2.0, 2.0, 2.5), euler)
    s = measure_shared(tissues, owner)
    out = junction_figure(None, tissues, owner, tmp_path / "fig" / "junction.png",
                          shared_vessel_mask=s.vessel_mask())
    assert out.is_file()
    purple, orange, red = _hues(out)
    assert purple > 1000 and orange > 1000
    base = junction_figure(None, tissues, owner, tmp_path / "novessel.png")
    assert red > _hues(base)[2] + 20  # the legend's red patch is in both
    again = junction_figure(None, tissues, owner, tmp_path / "again.png",
                            shared_vessel_mask=s.vessel_mask())
    assert again.read_bytes() == out.read_bytes()


def test_junction_figure_without_vessels(box_pair, tmp_path):
    tissues, owner = box_pair((2.0, 2.0, 2.0), vessel="none")
    out = junction_figure(None, tissues, owner, tmp_path / "j.png")
    purple, orange, _red = _hues(out)
    assert purple > 1000 and orange > 1000
