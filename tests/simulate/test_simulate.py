"""Reconstruction: expander formulas, fill schedule, Aya rule, defects and implant on phantoms."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from twinsep.errors import InputError
from twinsep.simulate import expander_gain, fill_schedule, height_for_volume, load_settings
from twinsep.simulate.expanders import Product, evaluate, expander_mesh, load_catalog

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "expanders.yaml"


# --- formulas, checked against numbers worked out by hand ------------------------------------
def test_round_expander_by_hand() -> None:
    # 6 cm base, 3 cm dome (a hemisphere): gain = pi * 3^2, volume = pi*3*(3*9 + 9)/6
    g = expander_gain("round", 6.0, 6.0, 3.0)
    assert g.geometric_cm2 == pytest.approx(28.27, abs=0.005)
    assert g.expected_cm2 == pytest.approx(7.07, abs=0.005)
    assert g.volume_ml == pytest.approx(18 * math.pi, rel=1e-9)  # 56.55 ml
    assert g.efficiency == 0.25
    assert g.arc_width_cm == pytest.approx(3 * math.pi)  # half a circle of radius 3


def test_round_8cm_reference_example() -> None:
    # reference section 3.1: d = 8, h = 3 -> gain 28.3 cm2, V = pi*3*(48+9)/6 = 89.5 ml
    g = expander_gain("round", 8.0, 8.0, 3.0)
    assert g.geometric_cm2 == pytest.approx(28.27, abs=0.01)
    assert g.volume_ml == pytest.approx(89.54, abs=0.01)


def test_rectangular_by_hand() -> None:
    # L=10, W=6, h=3: semicircle R=3, theta=pi: gain = 10*(3*pi - 6) = 34.25,
    # V = 10 * 9 * pi / 2 = 141.37
    g = expander_gain("rectangular", 10.0, 6.0, 3.0)
    assert g.geometric_cm2 == pytest.approx(34.248, abs=0.001)
    assert g.volume_ml == pytest.approx(141.372, abs=0.001)
    assert g.expected_cm2 == pytest.approx(0.38 * 34.248, abs=0.001)
    # shallow: L=12, W=8, h=1: R = (16+1)/2 = 8.5, theta = 2 asin(4/8.5)
    r, th = 8.5, 2 * math.asin(4 / 8.5)
    g = expander_gain("rectangular", 12.0, 8.0, 1.0)
    assert g.geometric_cm2 == pytest.approx(12 * (r * th - 8), rel=1e-12)
    assert g.volume_ml == pytest.approx(12 * r * r * (th - math.sin(th)) / 2, rel=1e-12)


def test_rectangular_higher_than_half_cylinder() -> None:
    # W=6, h=4: R = 25/8 < h, major segment: area = pi R^2 - minor segment of height 2R-h
    r = 25 / 8
    hm = 2 * r - 4  # the complementary (minor) segment's height
    th_m = 2 * math.acos((r - hm) / r)
    minor = r * r * (th_m - math.sin(th_m)) / 2
    g = expander_gain("rectangular", 1.0, 6.0, 4.0, efficiency=1.0)
    assert g.volume_ml == pytest.approx(math.pi * r * r - minor, rel=1e-9)
    assert g.arc_width_cm == pytest.approx(2 * math.pi * r - r * th_m, rel=1e-9)


def test_crescent_model_and_efficiency() -> None:
    c = expander_gain("crescent", 10.0, 6.0, 3.0)
    rect = expander_gain("rectangular", 10.0, 6.0, 3.0)
    assert c.geometric_cm2 == pytest.approx(rect.geometric_cm2)
    assert c.expected_cm2 == pytest.approx(0.32 * rect.geometric_cm2)


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        expander_gain("oval", 6, 6, 3)
    with pytest.raises(ValueError):
        expander_gain("round", 6, 4, 3)
    with pytest.raises(ValueError):
        expander_gain("round", 6, 6, 0)


@pytest.mark.parametrize("shape,length,width", [("round", 6, 6), ("rectangular", 12, 6),
                                                ("crescent", 10, 4)])
def test_height_for_volume_and_mesh(shape: str, length: float, width: float) -> None:
    h = height_for_volume(shape, length, width, 100.0)
    assert expander_gain(shape, length, width, h).volume_ml == pytest.approx(100.0, rel=1e-6)
    p = Product(id="x", shape=shape, length_cm=length, width_cm=width, volume_ml=100.0)
    m = expander_mesh(p, h, np.eye(4))
    assert m.is_watertight
    assert m.volume / 1000 == pytest.approx(100.0, rel=0.05)


@pytest.mark.parametrize("shape,length,width", [("round", 12, 12), ("rectangular", 12, 6),
                                                ("crescent", 10, 4)])
def test_expander_bent_onto_the_skull(shape: str, length: float, width: float) -> None:
    """With a skull radius the base lies on that sphere and the dome holds the same volume,
    so it stands lower; the mesh stays closed."""
    from twinsep.simulate.expanders import wrap_on_sphere

    r_mm = 60.0
    h = height_for_volume(shape, length, width, 150.0)
    p = Product(id="x", shape=shape, length_cm=length, width_cm=width, volume_ml=150.0)
    flat = expander_mesh(p, h, np.eye(4))
    bent = expander_mesh(p, h, np.eye(4), base_radius_mm=r_mm)
    assert bent.is_watertight and bent.volume > 0
    assert bent.volume == pytest.approx(flat.volume, rel=0.01)  # the same fill
    dist = np.linalg.norm(bent.vertices - [0.0, 0.0, -r_mm], axis=1)
    assert dist.min() == pytest.approx(r_mm, abs=1e-6)  # the base on the sphere
    # over a convex base the same volume stands lower
    assert r_mm + 5.0 * h < dist.max() < r_mm + 10.0 * h
    # a flat base 6 cm from the centre would stand 34 mm off a 60 mm skull; the bent one
    # follows it: geodesic distance kept
    q = wrap_on_sphere(np.array([[60.0, 0.0, 0.0], [0.0, 0.0, 5.0]]), r_mm)
    assert np.linalg.norm(q[0] - [0, 0, -r_mm]) == pytest.approx(r_mm)
    assert np.arccos(q[0, 2] / r_mm + 1.0) * r_mm == pytest.approx(60.0)
    assert np.allclose(q[1], [0.0, 0.0, 5.0])


def test_fill_schedule_by_hand() -> None:
    s = load_settings()
    sch = fill_schedule(100.0, s)
    # 10 ml at insertion, 12.5 ml a week from day 7: ceil(90 / 12.5) = 8 fills, last on day 56
    assert sch["initial_fill_ml"] == pytest.approx(10.0)
    assert sch["n_fills"] == 8
    assert [f["day"] for f in sch["fills"]] == [7, 14, 21, 28, 35, 42, 49, 56]
    assert sch["fills"][-1]["total_ml"] == pytest.approx(100.0)
    assert sch["weeks"] == 8


def test_aya_rule_flags() -> None:
    s = load_settings()
    p = Product(id="r", shape="rectangular", length_cm=10, width_cm=6, volume_ml=141.3716694)
    # defect 20 cm2 x 3 cm wide: needs > 140 ml and > 7.5 cm of expanded width (3 pi = 9.42)
    c = evaluate(p, 1, 20.0, 3.0, 100.0, s)
    assert c.checks["aya_volume"] and c.checks["aya_width"]
    c = evaluate(p, 1, 21.0, 4.0, 100.0, s)  # needs 147 ml and 10 cm
    assert not c.checks["aya_volume"] and not c.checks["aya_width"]


def test_expanders_fit_on_the_ring_by_chord() -> None:
    # ring of 40 cm (radius 6.37 cm): neighbours 120 degrees apart are 2 r sin(60) = 11.0 cm
    # apart, 90 degrees apart 9.0 cm; so three 10 cm expanders fit, four do not, although
    # 4 x 10 = 40 cm of base length would fill the ring exactly
    s = load_settings()
    p = Product(id="r", shape="round", length_cm=10, width_cm=10, volume_ml=250)
    assert evaluate(p, 3, 50.0, 3.0, 40.0, s).checks["fits_on_scalp"]
    assert not evaluate(p, 4, 50.0, 3.0, 40.0, s).checks["fits_on_scalp"]
    big = Product(id="b", shape="round", length_cm=12, width_cm=12, volume_ml=420)
    assert not evaluate(big, 3, 50.0, 3.0, 40.0, s).checks["fits_on_scalp"]  # 12 > 11.0
    assert evaluate(big, 1, 50.0, 3.0, 40.0, s).checks["fits_on_scalp"]


def test_settings_override(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("efficiency:\n  round: 0.5\n")
    s = load_settings(f)
    assert s.efficiency.round == 0.5 and s.efficiency.rectangular == 0.38
    assert expander_gain("round", 6, 6, 3, efficiency=s.efficiency.round).expected_cm2 == \
        pytest.approx(14.137, abs=0.001)
    f.write_text("efficency: {}\n")
    with pytest.raises(InputError):
        load_settings(f)


def test_catalog_loads() -> None:
    prods = load_catalog(CATALOG)
    assert {p.shape for p in prods} == {"round", "rectangular", "crescent"}


# --- phantoms --------------------------------------------------------------------------------
# Truth: ``junction_area_cm2`` of truth.json is the area of the interface between the twins
# inside the whole head (skin to skin); ``junction_skull_area_cm2`` its part inside the outer
# skull surface (where soft tissue fills the crease between the heads the interface runs
# through scalp), both on the phantom's analytic fields, not from the labels.


@pytest.fixture(scope="module")
def simulated(make_phantom_obj, tmp_path_factory: pytest.TempPathFactory):
    """``simulated(fusion, spacing, **spec) -> (phantom, section, models dir, skull junction
    cm2)``: ``simulate_arrays`` with a models folder, once per phantom (``spec``: further
    phantom options)."""
    from twinsep.simulate.core import simulate_arrays

    cache: dict = {}

    def get(fusion: str, spacing: float, **spec):
        key = (fusion, spacing, tuple(sorted(spec.items())))
        if key not in cache:
            ph = make_phantom_obj(fusion=fusion, spacing=spacing, **spec)
            out = tmp_path_factory.mktemp(f"models_{fusion}_{spacing:g}")
            sec = simulate_arrays(ph.tissues, ph.owner, products=load_catalog(CATALOG),
                                  models_dir=out)
            cache[key] = (ph, sec, out, ph.truth["junction_skull_area_cm2"])
        return cache[key]

    return get


CASES = [("total", 2.0), ("total", 3.0), ("partial", 2.0), ("partial", 3.0)]
#: The 1 mm phantoms' further options (small heads without noise or blur, to stay fast): the
#: hole test and the smoothness test share one ``simulated`` run per fusion.
SMALL_HEADS = {"scale_a": 0.45, "scale_b": 0.45, "noise": 0.0, "blur": 0.0}


@pytest.mark.parametrize("fusion,spacing", CASES)
def test_defects_match_truth(simulated, fusion: str, spacing: float) -> None:
    ph, sec, _, skull = simulated(fusion, spacing)
    j = ph.truth["junction_area_cm2"]
    for name in "AB":
        t = sec["twins"][name]
        # the wound (skin to skin) and the opening in the skull, each against its truth
        assert t["scalp_defect_cm2"] == pytest.approx(j, rel=0.15)
        assert t["bone_opening_cm2"] == pytest.approx(skull, rel=0.15)
        # the skull to rebuild spans the opening along the skull's curvature
        assert t["bone_opening_cm2"] <= t["bone_defect_cm2"] <= 1.5 * t["bone_opening_cm2"]
        if fusion == "total":  # bone meets bone across most of the junction
            assert t["bone_defect_cm2"] == pytest.approx(j, rel=0.15)
        assert 0 <= t["dura_defect_cm2"] <= t["bone_opening_cm2"] <= t["scalp_defect_cm2"]
        assert len(t["defect_outline_mm"]) > 10


def test_junction_in_skull_share(simulated) -> None:
    # the crease scalp (4 mm deep all round the junction) is 16 % of the total phantom's
    # junction and 25 % of the smaller partial one's
    for fusion, lo, hi in (("total", 0.80, 0.88), ("partial", 0.70, 0.80)):
        ph, _, _, skull = simulated(fusion, 2.0)
        assert lo < skull / ph.truth["junction_area_cm2"] < hi


@pytest.mark.xfail(strict=True, reason=(
    "issue 4 acceptance point not met: on the partial phantom the skull to rebuild is 82-88 % "
    "of the skin-to-skin junction (the 4 mm crease scalp is 25 % of it; see "
    "docs/reconstruction.md). Strict: passes only when it is met."))
@pytest.mark.parametrize("spacing", [2.0, 3.0])
def test_partial_bone_defect_within_15pct_of_junction(simulated, spacing: float) -> None:
    ph, sec, _, _ = simulated("partial", spacing)
    for name in "AB":
        assert sec["twins"][name]["bone_defect_cm2"] == pytest.approx(
            ph.truth["junction_area_cm2"], rel=0.15)


@pytest.mark.parametrize("fusion,spacing", CASES)
def test_implant_closes_skull_and_spares_brain(simulated, fusion: str, spacing: float) -> None:
    ph, sec, out, _ = simulated(fusion, spacing)
    import trimesh

    from twinsep.labels import resolve_owner
    from twinsep.simulate.core import OWNER_SEARCH_MM

    own = resolve_owner(ph.tissues, ph.owner, search_mm=OWNER_SEARCH_MM)
    for name in "AB":
        cr = sec["cranium"]["twins"][name]
        assert cr["closure"]["closed"]
        assert cr["closure"]["leak_voxels_without_implant"] > 0  # the test sees the open defect
        assert cr["closure"]["smallest_detectable_hole_mm"] == spacing
        assert cr["brain_overlap_voxels"] == 0
        assert cr["min_brain_distance_mm"] > 0
        imp = cr["implant"]
        assert imp["watertight_mesh"] and imp["volume_ml"] > 0 and imp["area_cm2"] > 0
        for part in ("implant", "skull"):  # the parts meant to be made: closed, outwards
            m = trimesh.load(out / f"twin_{name}_{part}.stl")
            assert m.is_watertight and m.volume > 0, part
        # the implant sits where the other twin was: test against the child's own brain
        arr = sec["_arrays"][name]["implant"]
        brain = (ph.tissues.array == 4) & (own == (1 if name == "A" else 2))
        assert not (arr & brain).any()


def test_total_expander_plan(simulated) -> None:
    _, sec, out, _ = simulated("total", 3.0)
    for name in "AB":
        sc = sec["scalp"]["twins"][name]
        items = sec["scalp"]["expanders"][name]
        assert len(items) == sc["n_expanders"] >= 1
        for it in items:
            assert (out / f"twin_{name}_expander_{it['index']}.stl").exists()
            assert it["distance_to_defect_mm"] >= 10.0
            assert 7 <= it["schedule"]["first_fill_day"] <= 10
        assert sc["aya"]["satisfied"] or sc["warnings"]


@pytest.mark.slow
@pytest.mark.parametrize("fusion", ["total", "partial"])
def test_no_hole_at_1mm(simulated, fusion: str) -> None:
    """Skull + implant closed at 1 mm, and a 2 mm hole drilled through the implant is found
    (small heads, to stay fast)."""
    from scipy import ndimage as ndi

    from twinsep.labels import resolve_owner
    from twinsep.simulate import cranium as cr
    from twinsep.simulate.core import OWNER_SEARCH_MM

    ph, sec, _, _ = simulated(fusion, 1.0, **SMALL_HEADS)
    tis = ph.tissues.array
    own = resolve_owner(ph.tissues, ph.owner, search_mm=OWNER_SEARCH_MM)
    for name, code in (("A", 1), ("B", 2)):
        c = sec["cranium"]["twins"][name]
        assert c["closure"]["closed"] and c["closure"]["smallest_detectable_hole_mm"] == 1.0
        assert c["closure"]["leak_voxels_without_implant"] > 0
        assert c["brain_overlap_voxels"] == 0
        arr = sec["_arrays"][name]
        head = (own == code) & (tis > 0)
        box = cr.grow(cr.union(cr.bbox(head), cr.bbox(arr["implant"])), 0.0, (1.0,) * 3,
                      tis.shape)
        s_ = cr.sl(box)
        t, hd, implant, opened = tis[s_], head[s_], arr["implant"][s_], arr["opened"][s_]
        bone, cran, intra = hd & (t == 2), hd & (t >= 2), hd & (t >= 3)
        # the cavity voxels that the open defect exposes (reached from outside without the
        # implant, next to a reached voxel that is not cavity)
        wall = bone | (cran & ndi.binary_dilation(~cran & ~opened))
        lab, _ = ndi.label(~wall)
        rim = np.unique(np.concatenate([f.ravel() for f in (lab[0], lab[-1], lab[:, 0],
                                                            lab[:, -1], lab[:, :, 0],
                                                            lab[:, :, -1])]))
        out = np.isin(lab, rim[rim > 0])
        exposed = np.argwhere(intra & out & ndi.binary_dilation(out & ~intra))
        # drill a 2 mm hole along the defect normal through the exposed voxel nearest the
        # defect centre
        tw = sec["twins"][name]
        lo = np.array([b[0] for b in box])
        centre = np.asarray(tw["defect_centre_mm"]) - np.asarray(tw["translation_mm"])
        n = np.asarray(tw["defect_normal"], float)
        ex = ph.tissues.index_to_world(exposed + lo)
        p = ex[np.argmin(np.linalg.norm(ex - centre, axis=1))]
        kji = np.argwhere(implant)
        rel = ph.tissues.index_to_world(kji + lo) - p
        radial = np.linalg.norm(rel - np.outer(rel @ n, n), axis=1)
        assert (radial <= 1.0).sum() >= 2
        drilled = implant.copy()
        drilled[tuple(kji[radial <= 1.0].T)] = False
        assert cr.closure_check(bone, implant, cran, intra, opened)["closed"]
        assert not cr.closure_check(bone, drilled, cran, intra, opened)["closed"]


def test_cli_simulate_writes_plan(tmp_path: Path, make_phantom_obj) -> None:
    import json

    from twinsep.cli import main
    from twinsep.labels import resolve_owner
    from twinsep.simulate.core import OWNER_SEARCH_MM

    ph = make_phantom_obj(fusion="total", spacing=3.0)
    case = tmp_path / "case"
    (case / "labels").mkdir(parents=True)
    ph.tissues.write(case / "labels" / "tissues.nii.gz")
    own = resolve_owner(ph.tissues, ph.owner, search_mm=OWNER_SEARCH_MM)
    ph.owner.with_array(own).write(case / "labels" / "twins.nii.gz")
    assert main(["simulate", str(case), "--catalog", str(CATALOG)]) == 0
    first = (case / "plan.json").read_bytes()
    plan = json.loads(first)
    rec = plan["reconstruction"]
    for name in "AB":
        for key in ("scalp_defect_cm2", "bone_defect_cm2", "dura_defect_cm2"):
            assert rec["twins"][name][key] > 0
        assert (case / rec["cranium"]["twins"][name]["implant"]["model"]).exists()
    assert isinstance(rec["scalp"]["expanders"]["A"], list)
    assert main(["simulate", str(case), "--catalog", str(CATALOG)]) == 0
    assert (case / "plan.json").read_bytes() == first  # deterministic
    assert main(["simulate", str(tmp_path / "nope")]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("fusion", ["total", "partial"])
def test_implant_mesh_is_smooth(simulated, fusion: str) -> None:
    """At 1 mm the implant STL is smoothed, not the voxel staircase: neighbouring faces meet
    at smaller angles than on the marching-cubes mesh of the implant's voxels, with the
    volume kept. (At 2-3 mm a 2 mm implant is one voxel thick: nothing to smooth.)"""
    import trimesh

    from twinsep.simulate.core import surface

    def mean_angle(m) -> float:
        adj = m.face_adjacency
        cos = np.clip((m.face_normals[adj[:, 0]] * m.face_normals[adj[:, 1]]).sum(1), -1, 1)
        return float(np.degrees(np.arccos(cos)).mean())

    ph, sec, out, _ = simulated(fusion, 1.0, **SMALL_HEADS)  # the STL files are in out
    for name in "AB":
        m = trimesh.load(out / f"twin_{name}_implant.stl", force="mesh")
        raw = surface(sec["_arrays"][name]["implant"], ph.tissues, sigma_vox=0.0)
        rm = trimesh.Trimesh(raw.verts, raw.faces, process=True)
        assert m.is_watertight
        assert mean_angle(m) < 0.8 * mean_angle(rm), (mean_angle(m), mean_angle(rm))
        assert abs(m.volume) == pytest.approx(abs(rm.volume), rel=0.03)
