"""Shared anatomy: synthetic volumes with known answers (fast) and phantoms (slow)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from twinsep.casefolder import PLAN_SCHEMA_VERSION, validate_plan
from twinsep.identify.shared import measure_shared, resolve_owner
from twinsep.image import Volume


@pytest.mark.parametrize(
    ("spacing", "euler"),
    [((2.0, 2.0, 2.0), None), ((1.5, 2.0, 3.0), (20, 30, 10))],
    ids=["iso2mm", "oblique-aniso"],
)
def test_crossing_vessel_measured(box_pair, spacing, euler):
    tissues, owner = box_pair(spacing, euler)
    s = measure_shared(tissues, owner)
    assert len(s.vessels) == 1
    v = s.vessels[0]
    assert v.id == 1
    assert v.volume_ml == pytest.approx(np.pi * 16 * 80 / 1000, rel=0.08)
    assert v.length_mm == pytest.approx(80.0, rel=0.08)
    assert 6.5 < v.min_diameter_mm <= v.max_diameter_mm < 9.5  # true diameter 8 mm
    assert v.share_a == pytest.approx(0.5, abs=0.05)
    assert v.share_a + v.share_b == pytest.approx(1.0)
    assert len(v.crossings) == 1
    assert np.allclose(v.crossings[0].point_mm, [20, 20, 0], atol=2.0)
    assert v.crossings[0].cross_section_mm2 == pytest.approx(np.pi * 16, rel=0.15)
    # flat A/B interface of 100 x 80 mm inside the head
    assert s.junction_area_cm2 == pytest.approx(80.0, rel=0.10)
    assert s.brain_min_distance_mm == 0.0
    sphere = 4 / 3 * np.pi * 27  # ml, brain minus the vessel running through it
    for twin in ("A", "B"):
        assert s.tissue_volumes_ml[twin]["brain"] == pytest.approx(sphere, rel=0.04)
    assert s.shared_vessel_mask is not None and s.shared_vessel_mask.sum() > 0


@pytest.mark.parametrize("vessel", ["apart", "stray", "none"])
def test_no_shared_vessel(box_pair, vessel):
    tissues, owner = box_pair(vessel=vessel)
    s = measure_shared(tissues, owner)
    assert s.vessels == []
    assert s.to_plan()["vessels"] == []


def test_brain_gap_measured(box_pair):
    tissues, owner = box_pair()
    t = tissues.array.copy()
    _, _, z = tissues.index_to_world(np.indices(t.shape).reshape(3, -1).T).T
    brain = (t.ravel() == 4) & (np.abs(z) < 5)  # 10 mm gap: slab |z| < 5 mm is CSF
    t.ravel()[brain] = 3
    s = measure_shared(tissues.with_array(t), owner)
    assert s.brain_min_distance_mm == pytest.approx(10.0, abs=2.0)
    assert s.brain_contact_area_cm2 == 0.0


def _slab_pair(sheet_mm: float, euler=(10.0, -20.0, 30.0)):
    """Two brain slabs meeting at z = 0 (labels: touching over 30 x 30 mm = 9 cm2) in an
    oblique 1 mm grid, and a CT (brain 30-40 HU with texture, 10 HU noise, 0.8 mm blur) that
    has a CSF sheet (8 HU) ``sheet_mm`` thick at the junction, which the labels miss."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(3)
    d = Rotation.from_euler("xyz", euler, degrees=True).as_matrix()
    n = np.array([64, 64, 64])
    origin = -d @ ((n - 1) / 2.0)
    vol = Volume(np.zeros(n[::-1], np.uint8), tuple(origin), (1.0, 1.0, 1.0), tuple(d.ravel()))
    x, y, z = vol.index_to_world(np.indices(vol.shape).reshape(3, -1).T).T
    head = (np.abs(x) < 25) & (np.abs(y) < 25) & (np.abs(z) < 25)
    brain = (np.abs(x) < 15) & (np.abs(y) < 15) & (np.abs(z) < 15)
    t = np.where(brain, 4, np.where(head, 1, 0)).astype(np.uint8).reshape(vol.shape)
    o = np.where(head, np.where(z < 0, 1, 2), 0).astype(np.uint8).reshape(vol.shape)
    texture = ndi.gaussian_filter(rng.standard_normal(vol.shape), 2.0)
    hu = np.where(t == 4, 35.0 + 5.0 * np.sign(texture), np.where(t == 1, 40.0, -1000.0))
    hu[(np.abs(z) < sheet_mm / 2).reshape(vol.shape) & (t == 4)] = 8.0
    hu = ndi.gaussian_filter(hu, 0.8) + 10.0 * rng.standard_normal(vol.shape)
    return vol.with_array(t), vol.with_array(o), vol.with_array(hu.astype(np.float32))


@pytest.mark.parametrize("sheet_mm", [1.5, 2.0])
def test_thin_csf_sheet_is_not_contact(sheet_mm):
    """Labels that read a thin CSF sheet as brain say 9 cm2 of contact; with the scan the
    sheet shows across the junction and the contact is gone."""
    tissues, owner, ct = _slab_pair(sheet_mm)
    labels_only = measure_shared(tissues, owner).brain_contact_area_cm2
    assert labels_only == pytest.approx(9.0, rel=0.1)
    assert measure_shared(tissues, owner, image=ct).brain_contact_area_cm2 < 0.2 * labels_only


def test_true_contact_kept_with_the_scan():
    tissues, owner, ct = _slab_pair(0.0)
    labels_only = measure_shared(tissues, owner).brain_contact_area_cm2
    with_scan = measure_shared(tissues, owner, image=ct).brain_contact_area_cm2
    assert with_scan == pytest.approx(labels_only, rel=0.1)


def test_ambiguous_owner_resolved_to_nearest(box_pair):
    tissues, owner = box_pair(vessel="none")
    o = owner.array.copy()
    _, _, z = tissues.index_to_world(np.indices(o.shape).reshape(3, -1).T).T
    amb = (np.abs(z) < 6).reshape(o.shape) & (o > 0)
    o[amb] = 3
    res = resolve_owner(tissues, owner.with_array(o))
    assert set(np.unique(res)) == {0, 1, 2}
    assert np.array_equal(res, owner.array)


def test_to_plan_validates(box_pair):
    tissues, owner = box_pair()
    plan = {"schema_version": PLAN_SCHEMA_VERSION, "twinsep_version": "0",
            "shared": measure_shared(tissues, owner).to_plan()}
    validate_plan(plan)
    assert set(plan["shared"]["tissue_volumes_ml"]["A"]) == {
        "scalp", "bone", "dura", "brain", "vessel"}


# --- phantoms --------------------------------------------------------------------------
#: Junction area against the analytic truth (projected marching-cubes area; measured
#: -1.2 to +2.6 % at 2-3 mm on the truth owner map; the staircase area was +6 to +10 %).
JUNCTION_REL = 0.03
#: Brain contact area against truth.json: measured -12 to -2 % at 2-3 mm. truth.json's
#: value is itself 6-10 % above the converged analytic area (it interpolates the brain
#: probability on its 1.5 mm grid), against which the measure is within +-4 %.
CONTACT_LO, CONTACT_HI = -0.15, 0.02


def _check_areas(s, truth, junction_rel=JUNCTION_REL) -> None:
    assert s.junction_area_cm2 == pytest.approx(truth["junction_area_cm2"], rel=junction_rel)
    tc = truth["brain_contact_area_cm2"]
    if tc > 0:
        assert CONTACT_LO < s.brain_contact_area_cm2 / tc - 1 < CONTACT_HI
    else:
        assert s.brain_contact_area_cm2 == 0.0 and s.brain_min_distance_mm > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "kw",
    [{}, {"fusion": "partial"}, {"fusion": "partial", "shared_sinus": True},
     {"spacing": (2.0, 2.5, 3.0), "oblique": 25.0, "seed": 3}],
    ids=["total", "partial", "partial-sinus", "oblique-aniso"],
)
def test_phantom_shared(make_phantom_obj, kw):
    ph = make_phantom_obj(**{"spacing": 3.0, **kw})  # 3 mm unless given
    truth = ph.truth
    s = measure_shared(ph.tissues, ph.owner)
    assert bool(s.vessels) == bool(truth["shared_vessel"]["crosses"])
    _check_areas(s, truth)
    for twin in ("A", "B"):
        for tissue, ml in truth["tissue_volumes_ml"][twin].items():
            assert s.tissue_volumes_ml[twin][tissue] == pytest.approx(ml, rel=0.03, abs=0.5)
    plan = {"schema_version": PLAN_SCHEMA_VERSION, "twinsep_version": "0",
            "shared": s.to_plan()}
    validate_plan(plan)


#: Kinds of benchmarks/bench_identity.py's PHANTOM_SET, at 2 mm (the session's phantoms).
AREA_KINDS = {
    "type I total": {"fusion": "total"},
    "type II total": {"fusion": "total", "axial_rotation": 180.0},
    "type III total": {"fusion": "total", "axial_rotation": 90.0},
    "partial": {"fusion": "partial"},
    "angular 100 deg": {"fusion": "total", "long_axis_angle": 100.0},
    "unequal 0.80/0.58": {"fusion": "total", "scale_a": 0.80, "scale_b": 0.58},
    "off-centre junction": {"fusion": "total", "junction_offset": 25.0},
    "oblique anisotropic": {"fusion": "total", "oblique": 25.0, "spacing": (2.0, 2.5, 3.2)},
}


@pytest.mark.parametrize("name", list(AREA_KINDS))
def test_junction_and_contact_area_2mm(make_phantom_obj, name):
    """Junction and brain contact areas on the truth owner map at 2 mm, several kinds."""
    ph = make_phantom_obj(**AREA_KINDS[name])
    s = measure_shared(ph.tissues, ph.owner)
    _check_areas(s, ph.truth)


def test_junction_area_wavy_2mm(make_phantom_obj):
    """5 mm undulation: -6.4 % on the truth owner map, whose +-3 mm ambiguous band, given
    to the nearest twin, rounds the waves off (-1.9 % when the band is left out)."""
    ph = make_phantom_obj(fusion="total", fusion_depth=40.0, undulation=5.0)
    s = measure_shared(ph.tissues, ph.owner)
    _check_areas(s, ph.truth, junction_rel=0.08)


@pytest.mark.parametrize("euler", [None, (20, 30, 10), (0, 45, 0)], ids=["axes", "oblique", "45"])
def test_junction_area_grid_independent(box_pair, euler):
    """A flat interface has the same area whatever its angle to the grid."""
    tissues, owner = box_pair((2.0, 2.0, 2.0), euler, vessel="none")
    s = measure_shared(tissues, owner)
    assert s.junction_area_cm2 == pytest.approx(80.0, rel=0.02)
