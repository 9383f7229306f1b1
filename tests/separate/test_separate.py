"""Tests of ``twinsep.separate``: the minimum-risk cut, alternatives, staging, CLI."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.labels import Tissue
from twinsep.separate import load_risk, plan_stages, pyramid_cut, separate, solve_band
from twinsep.separate.graphcut import pyramid_factors
from twinsep.separate.metrics import cut_faces, face_measures
from twinsep.separate.risk import RiskModel

SPACING = 3.0  # mm; small phantoms keep the suite fast


# --- phantoms (the session's cache, see conftest.py) ----------------------------------
def _phantom_kw(kind: str) -> dict:
    return {
        "sinus": {},
        "nosinus": {"shared_sinus": False},
        "partial": {"fusion": "partial", "fusion_depth": 4.0},
        "oblique": {"oblique": 25.0, "axial_rotation": 40.0},
    }[kind]


@pytest.fixture(scope="module")
def separated(make_phantom_obj):
    """``separated(kind) -> (phantom, Separation)``: a 3 mm phantom of that kind and
    ``separate`` on its truth owner map, once per kind."""
    cache: dict[str, tuple] = {}

    def get(kind: str):
        if kind not in cache:
            ph = make_phantom_obj(spacing=SPACING, **_phantom_kw(kind))
            cache[kind] = (ph, separate(ph.tissues, ph.owner))
        return cache[kind]

    return get


def _true_interface_distance(ph) -> np.ndarray:
    """Distance (mm) of each voxel to the true interface (sign change of the phantom's
    ``delta = sA - sB + 2u`` between 6-neighbours)."""
    from twinsep.phantom.build import layout

    vol = ph.tissues
    grid = np.indices(vol.shape).reshape(3, -1).T.astype(float)
    delta = layout(ph.spec).fields(vol.index_to_world(grid))[2].reshape(vol.shape)
    neg = delta < 0
    iface = np.zeros(vol.shape, bool)
    for ax in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        m = neg[tuple(lo)] != neg[tuple(hi)]
        iface[tuple(lo)] |= m
        iface[tuple(hi)] |= m
    return ndi.distance_transform_edt(~iface, sampling=vol.spacing_kji)


# --- risk model ------------------------------------------------------------------------
def test_default_risk_order_and_growth():
    r = load_risk()
    c = r.cost_per_mm2
    assert c["vessel"] > 10 * c["brain"] > 10 * c["dura"]
    assert c["dura"] > c["bone"] > c["scalp"]
    assert r.vessel_cost(30.0) > r.vessel_cost(3.0) > r.vessel_cost(0.0)


def test_risk_file_errors(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("tissue_cost_per_mm2: {scalp: 1, bone: 2}\n")
    with pytest.raises(InputError, match=r"r\.yaml: setting tissue_cost_per_mm2\.dura: Field "
                                         r"required \(also missing: brain, vessel\)$"):
        load_risk(bad)
    bad.write_text("tissue_cost_per_mm2: {scalp: 1, bone: 2, dura: 3, brain: -4, vessel: 5}\n")
    with pytest.raises(InputError, match=r"r\.yaml: setting tissue_cost_per_mm2\.brain: Input "
                                         r"should be greater than 0$"):
        load_risk(bad)
    with pytest.raises(InputError, match=r"none\.yaml: no such risk file"):
        load_risk(tmp_path / "none.yaml")


_COSTS = "tissue_cost_per_mm2: {scalp: 1, bone: 2, dura: 5, brain: 100, vessel: 2000}\n"


@pytest.mark.parametrize(("text", "message"), [
    # a misspelt key, a wrong type, an out-of-range value: one line, the file and the key
    (_COSTS.replace("vessel:", "vesel:"), "setting tissue_cost_per_mm2.vesel: unknown tissue "
     "(expected scalp, bone, dura, brain, vessel)"),
    (_COSTS + "vessel_cross_section: {reference_mm: 10}\n", "setting "
     "vessel_cross_section.reference_mm: unknown setting (expected reference_mm2, exponent)"),
    ("tissue_costs_per_mm2: {}\n", "setting tissue_costs_per_mm2: unknown setting (expected "
     "version, tissue_cost_per_mm2, vessel_cross_section, vessel_division)"),
    (_COSTS.replace("100", "high"), "setting tissue_cost_per_mm2.brain: Input should be a "
     "valid number"),
    (_COSTS.replace("100", "true"), "setting tissue_cost_per_mm2.brain: Input should be a "
     "valid number"),
    (_COSTS + "vessel_division: 1.0\n", "setting vessel_division: must be a mapping"),
    (_COSTS + "vessel_cross_section: {exponent: -1}\n", "setting "
     "vessel_cross_section.exponent: Input should be greater than or equal to 0"),
    (_COSTS + "vessel_cross_section: {reference_mm2: 0}\n", "setting "
     "vessel_cross_section.reference_mm2: Input should be greater than 0"),
    (_COSTS + "vessel_division: {reference_mm: -1}\n", "setting vessel_division.reference_mm: "
     "Input should be greater than or equal to 0"),
    (_COSTS.replace("2000", ".nan"), "setting tissue_cost_per_mm2.vessel: Input should be a "
     "finite number"),
    (_COSTS + "version: 2\n", "setting version: Input should be 1"),
    ("", "setting tissue_cost_per_mm2: Field required"),
    ("tissue_cost_per_mm2: {scalp: [1\n", "cannot read risk (not valid YAML, line 2"),
    ("- 1\n", "risk must be a mapping"),
])
def test_bad_risk_file_is_one_line_naming_file_and_key(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(InputError) as info:
        load_risk(bad)
    assert str(info.value).startswith(f"{bad}: ") and message in str(info.value)
    assert "\n" not in str(info.value)


def test_risk_file_model_gives_todays_risk_model(tmp_path):
    from twinsep.separate.risk import TISSUE_KEYS, TissueCosts

    assert tuple(TissueCosts.model_fields) == tuple(TISSUE_KEYS.values())
    r = load_risk()
    assert r == RiskModel(cost_per_mm2={"scalp": 1.0, "bone": 2.0, "dura": 5.0, "brain": 100.0,
                                        "vessel": 2000.0}, reference_mm2=10.0, exponent=1.0,
                          division_reference_mm=1.0, source="default")
    # empty or absent sections are the defaults; the source is the path as given
    f = tmp_path / "mine.yaml"
    f.write_text(_COSTS.replace("100", "20") + "vessel_cross_section:\n")
    mine = load_risk(f)
    assert mine == replace(r, cost_per_mm2={**r.cost_per_mm2, "brain": 20.0}, source=str(f))
    assert all(type(v) is float for v in mine.cost_per_mm2.values())
    assert mine.as_dict()["vessel_division"] == {"reference_mm": 1.0}


def test_pyramid_factors_nest_and_handle_anisotropy():
    assert pyramid_factors((0.5, 0.5, 0.5), 4.0) == [(8, 8, 8), (4, 4, 4), (2, 2, 2), (1, 1, 1)]
    f = pyramid_factors((1.0, 0.5, 0.5), 4.0)
    assert f[-1] == (1, 1, 1) and f[0] == (4, 8, 8)
    for a, b in itertools.pairwise(f):
        assert all(x % y == 0 for x, y in zip(a, b, strict=True))
    assert pyramid_factors((3.0, 3.0, 3.0), 4.0) == [(1, 1, 1)]


# --- synthetic graphs ------------------------------------------------------------------
def _slab(tis_rows: np.ndarray, nk: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A (nk, ny, nx) block of tissue with A at k=0 and B at k=nk-1, band in between."""
    tis = np.repeat(tis_rows[None], nk, axis=0).astype(np.uint8)
    owner = np.full(tis.shape, 1, np.uint8)
    owner[nk // 2:] = 2
    return tis, owner


def _vessel_area(owner, tis, sp) -> float:
    cost = np.zeros(tis.shape, np.float32)
    return face_measures(owner, tis, cost, sp)["area_mm2"]["vessel"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    lam=st.floats(1.05, 50.0),
    sp=st.sampled_from([(1.0, 1.0, 1.0), (2.0, 0.7, 1.3)]),
)
def test_raising_vessel_cost_never_increases_vessel_area(seed, lam, sp):
    rng = np.random.default_rng(seed)
    tis = rng.choice([1, 2, 3, 4, 5], size=(12, 7, 7), p=[0.2, 0.2, 0.2, 0.2, 0.2])
    tis = tis.astype(np.uint8)
    owner = np.full(tis.shape, 1, np.uint8)
    owner[6:] = 2
    band = np.zeros(tis.shape, bool)
    band[1:-1] = True
    base = RiskModel(cost_per_mm2={"scalp": 1.0, "bone": 2.0, "dura": 5.0, "brain": 20.0,
                                   "vessel": 30.0}, exponent=0.0)
    areas = []
    for model in (base, base.scaled("vessel", lam)):
        cost = model.voxel_cost(tis, None)
        out, flow, _ = solve_band(cost, tis > 0, owner, band, sp)
        fm = face_measures(out, tis, cost, sp)
        assert fm["risk"] == pytest.approx(flow, rel=1e-6)  # the cut is the flow
        assert out[0].min() == 1 and out[-1].max() == 2  # seeds on their sides
        areas.append(_vessel_area(out, tis, sp))
    assert areas[1] <= areas[0] + 1e-9


def test_cut_separates_seeds_and_follows_cheap_tissue():
    rows = np.full((9, 9), int(Tissue.BRAIN), np.uint8)
    tis, owner = _slab(rows, nk=12)
    tis[8] = Tissue.CSF  # a cheap layer away from the starting interface (k=6)
    band = np.zeros(tis.shape, bool)
    band[1:-1] = True
    cost = load_risk().voxel_cost(tis, None)
    out, _, _ = solve_band(cost, tis > 0, owner, band, (1.0, 1.0, 1.0))
    # no 6-connected path of one owner joins the two seeds
    lab, _ = ndi.label(out == 1)
    assert lab[0, 4, 4] > 0 and not (lab[-1] == lab[0, 4, 4]).any()
    faces = [(ax, lo) for ax, lo, _ in cut_faces(out)]
    ks = np.concatenate([lo[0] for ax, lo in faces if ax == 0])
    assert set(ks.tolist()) <= {7, 8}  # the cut runs along the CSF layer


def test_dinic_gives_the_same_cut_value_as_bk():
    rng = np.random.default_rng(3)
    tis = rng.choice([1, 3, 4, 5], size=(10, 8, 8)).astype(np.uint8)
    owner = np.full(tis.shape, 1, np.uint8)
    owner[5:] = 2
    band = np.zeros(tis.shape, bool)
    band[1:-1] = True
    cost = load_risk().voxel_cost(tis, None)
    _, f_bk, _ = solve_band(cost, tis > 0, owner, band, (1.0, 1.0, 1.0), solver="bk")
    out, f_di, _ = solve_band(cost, tis > 0, owner, band, (1.0, 1.0, 1.0), solver="dinic")
    assert f_di == pytest.approx(f_bk, rel=1e-3)
    assert face_measures(out, tis, cost, (1.0, 1.0, 1.0))["risk"] == pytest.approx(f_bk, rel=1e-3)


def test_pyramid_matches_single_level_on_smooth_problem():
    tis = np.full((40, 16, 16), int(Tissue.BRAIN), np.uint8)
    tis[24:26] = Tissue.CSF
    owner = np.full(tis.shape, 1, np.uint8)
    owner[20:] = 2
    cost = load_risk().voxel_cost(tis, None)
    res = pyramid_cut(tis, owner, cost, (1.0, 1.0, 1.0), coarse_mm=4.0, corridor_mm=10.0)
    assert len(res.levels) == 3
    ks = np.flatnonzero((res.owner == 2).all(axis=(1, 2)))
    assert ks.min() in (24, 25, 26)


# --- staging ---------------------------------------------------------------------------
def _cx(sizes):
    return [{"id": i + 1, "cross_section_mm2": s, "kept_by": "A"} for i, s in enumerate(sizes)]


def test_staging_cap_and_fixed_count():
    cx = _cx([40.0, 2.0, 5.0, 3.0])
    auto = plan_stages(cx)  # cap 50 % of 50 mm2 = 25 mm2
    divides = [[d["id"] for d in s["divide"]] for s in auto["stages"]]
    assert divides == [[2, 4, 3], [1]]  # smallest first, the big sinus last
    assert auto["stages"][0]["remaining_shared"] == [1]
    assert auto["stages"][-1]["final_separation"]
    for s in auto["stages"][:-1]:
        assert s["share_of_crossing_cross_section"] <= 0.5 + 1e-9
    fixed = plan_stages(cx, stages=3)
    assert [len(s["divide"]) for s in fixed["stages"]] == [2, 1, 1]
    sizes = [d["cross_section_mm2"] for s in fixed["stages"] for d in s["divide"]]
    assert sizes == sorted(sizes)
    assert len(plan_stages(cx, stages=9)["stages"]) == 4
    none = plan_stages([])
    assert len(none["stages"]) == 1 and none["stages"][0]["divide"] == []


# --- phantoms: accuracy against the truth ----------------------------------------------
@pytest.mark.parametrize("kind", ["sinus", "nosinus", "partial", "oblique"])
def test_cut_lies_on_the_true_interface(separated, kind):
    ph, sep = separated(kind)
    dist = _true_interface_distance(ph)
    d = np.concatenate([np.minimum(dist[lo], dist[hi]) for _, lo, hi in cut_faces(sep.owner)])
    assert d.size > 0
    assert np.mean(d <= 5.0) >= 0.99
    # every tissue voxel A or B, background 0
    tis = ph.tissues.array
    assert set(np.unique(sep.owner[tis > 0]).tolist()) == {1, 2}
    assert not sep.owner[tis == 0].any()
    # the cut area is close to the true junction area
    area = sep.summary["cut_area_total_cm2"]
    assert area == pytest.approx(ph.truth["junction_area_cm2"], rel=0.25)


def test_shared_sinus_crossed_where_expected(separated):
    ph, sep = separated("sinus")
    truth = ph.truth["shared_vessel"]
    cx = sep.summary["crossing_vessels"]
    assert truth["crosses"] and len(cx) == len(truth["crossings"])
    for t in truth["crossings"]:
        d = min(np.linalg.norm(np.subtract(c["world_mm"], t["world_mm"])) for c in cx)
        assert d <= 2 * SPACING + 2.0
    for c in cx:
        assert c["equivalent_diameter_mm"] == pytest.approx(
            2 * np.sqrt(c["cross_section_mm2"] / np.pi))
        assert c["kept_by"] in ("A", "B")


def test_nothing_crossed_without_shared_vessel(separated):
    _, sep = separated("nosinus")
    assert sep.summary["crossing_vessels"] == []
    assert sep.summary["cut_area_cm2"]["vessel"] == 0.0
    assert len(sep.summary["staging"]["stages"]) == 1


def test_no_brain_cut_where_brains_do_not_touch(separated):
    ph, sep = separated("partial")
    assert ph.truth["brain_min_distance_mm"] > 0
    assert sep.summary["cut_area_cm2"]["brain"] == 0.0


def test_alternatives_keep_the_sinus_whole(separated):
    from twinsep.separate.alternatives import shared_sinus, sinus_constraints
    from twinsep.separate.graphcut import fill_unowned
    from twinsep.separate.metrics import vessel_components

    ph, sep = separated("sinus")
    tis = ph.tissues.array
    vlab = vessel_components(tis)
    # the owner map separate starts from: ambiguous (3) and unowned tissue to the nearest twin
    own0 = fill_unowned(ph.owner.array, tis > 0)
    comp = shared_sinus(vlab, own0)
    assert comp is not None
    rows = {r["key"]: r for r in sep.summary["alternatives"]}
    for key, keeper in (("sinus_to_a", 1), ("sinus_to_b", 2)):
        _, sinus = sinus_constraints(vlab, comp, own0, ph.tissues.spacing_kji, keeper, 12.0)
        assert sinus.sum() > 10
        assert (sep.owners[key][sinus] == keeper).all()
        assert rows[key]["risk"] >= rows["min_risk"]["risk"] - 1e-6
    assert rows["plane"]["available"] is False


# --- the command -----------------------------------------------------------------------
def _case(tmp_path, ph):
    from twinsep.casefolder import Case

    case = Case(tmp_path / "case")
    case.labels.mkdir(parents=True)
    ph.tissues.write(case.tissues)
    owner = ph.owner.array.copy()
    Volume.write(ph.owner.with_array(owner), case.twins)
    return case


def test_cli_separate_writes_results_deterministically(make_phantom_obj, tmp_path):
    from twinsep.cli import main

    ph = make_phantom_obj(spacing=SPACING)
    case = _case(tmp_path, ph)
    c = ph.truth["brain_centroids_mm"]
    mid = [(a + b) / 2 for a, b in zip(c["A"], c["B"], strict=True)]
    nrm = [b - a for a, b in zip(c["A"], c["B"], strict=True)]
    plane = ",".join(f"{v:.3f}" for v in [*mid, *nrm])
    args = ["separate", str(case.root), "--stages", "2", "--plane", plane]
    assert main(args) == 0
    plan = json.loads(case.plan.read_text())
    s = plan["separation"]
    assert set(s["cut_area_cm2"]) == {"scalp", "bone", "dura", "brain", "vessel"}
    assert [r["key"] for r in s["alternatives"]] == ["min_risk", "sinus_to_a", "sinus_to_b",
                                                     "plane"]
    assert s["alternatives"][3]["available"] and s["chosen"] == "min_risk"
    assert len(s["staging"]["stages"]) <= 2
    for c_ in s["crossing_vessels"]:
        assert {"id", "cross_section_mm2", "equivalent_diameter_mm", "world_mm",
                "kept_by"} <= set(c_)
    final = Volume.read(case.twins).array
    tis = ph.tissues.array
    assert set(np.unique(final[tis > 0]).tolist()) == {1, 2} and not final[tis == 0].any()
    assert (case.labels / "twins-identity.nii.gz").exists()
    assert (case.models / "cut_surface.ply").read_bytes().startswith(b"ply\n")
    first = case.plan.read_bytes()
    assert main(args) == 0  # second run reads the saved identity map: same plan
    assert case.plan.read_bytes() == first
    assert main([*args, "--choose", "d"]) == 0
    assert json.loads(case.plan.read_text())["separation"]["chosen"] == "plane"


def test_cli_bad_input(make_phantom_obj, tmp_path):
    from twinsep.cli import main

    assert main(["separate", str(tmp_path / "nope")]) == 2
    case = _case(tmp_path, make_phantom_obj(spacing=SPACING))
    assert main(["separate", str(case.root), "--choose", "zzz"]) == 2
    assert main(["separate", str(case.root), "--plane", "1,2,3"]) == 2
    assert main(["separate", str(case.root), "--choose", "plane"]) == 2


def test_cli_bad_risk_file_is_one_line_exit_2(make_phantom_obj, tmp_path, capsys):
    from twinsep.cli import main

    case = _case(tmp_path, make_phantom_obj(spacing=SPACING))
    bad = tmp_path / "bad.yaml"
    for text, message in [
        (_COSTS.replace("dura:", "durra:"), "setting tissue_cost_per_mm2.durra: unknown tissue"),
        (_COSTS.replace("5,", "'5',"), "setting tissue_cost_per_mm2.dura: Input should be a "
         "valid number"),
        (_COSTS.replace("5,", "0,"), "setting tissue_cost_per_mm2.dura: Input should be "
         "greater than 0"),
    ]:
        bad.write_text(text)
        capsys.readouterr()
        assert main(["separate", str(case.root), "--risk", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert f"{bad}: {message}" in err and "\n" not in err
    assert not case.plan.exists()


# --- vessel geometry -------------------------------------------------------------------
def _tube(shape, sp, p0, d, r) -> np.ndarray:
    """Digital straight tube: voxels whose centre lies within ``r`` mm of the axis."""
    s = np.asarray(sp, float)
    g = np.indices(shape).reshape(3, -1).T * s - np.asarray(p0) * s
    t = g @ d
    return (np.linalg.norm(g - t[:, None] * d, axis=1) < r).reshape(shape)


@pytest.mark.parametrize("sp", [(1.0, 1.0, 1.0), (0.5, 0.5, 0.5), (1.2, 0.6, 0.8)])
def test_perpendicular_section_of_digital_tubes(sp):
    from twinsep.separate.vessels import perpendicular_section

    rng = np.random.default_rng(7)
    for _ in range(6):
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        r = rng.uniform(2.0, 4.0) * max(sp)  # 2 to 4 voxels
        shape = tuple(int(12 * r / s) for s in sp)
        p0 = np.array(shape) / 2 + rng.uniform(-0.5, 0.5, 3)
        area, axis = perpendicular_section(_tube(shape, sp, p0, d, r), sp, p0,
                                           r * rng.uniform(0.7, 1.3))
        assert area == pytest.approx(np.pi * r * r, rel=0.08)
        assert abs(axis @ d) > np.cos(np.radians(15))  # axis in mm, k-j-i order


def test_local_calibre_matches_the_dense_distance_transform():
    from twinsep.separate.vessels import local_calibre

    rng = np.random.default_rng(2)
    sp = (1.5, 0.7, 1.0)
    v = ndi.binary_opening(rng.random((30, 40, 36)) < 0.55, iterations=2)
    v[0, 5:9, 5:9] = True  # touching the array's edge
    box, xs = local_calibre(v, sp)
    # reference: dense EDT on the padded array (outside the array counts as wall)
    edt = ndi.distance_transform_edt(np.pad(v, 1), sampling=sp)[1:-1, 1:-1, 1:-1]
    half = float(np.mean(sp)) / 2
    size = tuple(int(2 * np.ceil(edt.max() / s) + 1) for s in sp)
    r = np.maximum(ndi.maximum_filter(edt, size=size, mode="constant") - half, half)
    ref = np.where(v, np.pi * r * r, 0.0)
    full = np.zeros(v.shape, np.float32)
    full[box] = xs
    np.testing.assert_allclose(full, ref, rtol=1e-5, atol=1e-5)


def test_fill_unowned_is_the_nearest_owner():
    from twinsep.separate.graphcut import fill_unowned

    rng = np.random.default_rng(4)
    own = np.where(np.indices((40, 30, 30))[0] < 20, 1, 2).astype(np.uint8)
    own[17:23] = 3  # an ambiguous band
    own[rng.random(own.shape) < 0.02] = 0
    tissue = rng.random(own.shape) < 0.9
    out = fill_unowned(own, tissue)
    owned = (own == 1) | (own == 2)
    d_any = ndi.distance_transform_edt(~owned)
    for tw in (1, 2):
        d_tw = ndi.distance_transform_edt(own != tw)
        m = tissue & ~owned & (out == tw)
        assert np.allclose(d_tw[m], d_any[m])  # given the owner of a nearest owned voxel
    assert not out[~tissue].any() and (out[tissue & owned] == own[tissue & owned]).all()


def test_pyramid_levels_are_shared_by_the_cuts():
    from twinsep.separate.graphcut import Pyramid

    rng = np.random.default_rng(5)
    tis = rng.choice([3, 4, 5], size=(40, 24, 24), p=[0.5, 0.4, 0.1]).astype(np.uint8)
    owner = np.where(np.indices(tis.shape)[0] < 20, 1, 2).astype(np.uint8)
    cost = load_risk().voxel_cost(tis, None)
    force = np.zeros(tis.shape, np.uint8)
    force[20:23, 10:14, 10:14] = 1
    pyr = Pyramid(tis, owner, cost, (1.0, 1.0, 1.0), coarse_mm=4.0, corridor_mm=8.0)
    for f in (None, force, None):
        again = pyramid_cut(tis, owner, cost, (1.0, 1.0, 1.0), coarse_mm=4.0, corridor_mm=8.0,
                            force=f)
        np.testing.assert_array_equal(pyr.cut(f).owner, again.owner)
    assert (pyr.cut(force).owner[force == 1] == 1).all()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), lam=st.floats(1.05, 50.0))
def test_raising_vessel_cost_never_increases_vessel_risk_with_division_site(seed, lam):
    """With the division-site factor (per-voxel vessel weights), raising the vessel cost
    never increases the weighted vessel part of the cut."""
    rng = np.random.default_rng(seed)
    tis = rng.choice([1, 2, 3, 4, 5], size=(12, 7, 7)).astype(np.uint8)
    owner = np.full(tis.shape, 1, np.uint8)
    owner[6:] = 2
    band = np.zeros(tis.shape, bool)
    band[1:-1] = True
    dist = rng.uniform(0.0, 6.0, tis.shape).astype(np.float32)
    base = RiskModel(cost_per_mm2={"scalp": 1.0, "bone": 2.0, "dura": 5.0, "brain": 20.0,
                                   "vessel": 30.0}, exponent=0.0, division_reference_mm=1.0)
    part = []
    for model in (base, base.scaled("vessel", lam)):
        cost = model.voxel_cost(tis, None, dist)
        out, _, _ = solve_band(cost, tis > 0, owner, band, (1.0, 1.0, 1.0))
        assert out[0].min() == 1 and out[-1].max() == 2
        vcost = np.where(tis == Tissue.VESSEL, cost / model.cost_per_mm2["vessel"], 0.0)
        part.append(face_measures(out, tis, vcost.astype(np.float32), (1.0, 1.0, 1.0))["risk"])
    assert part[1] <= part[0] + 1e-6


def test_division_site_divides_a_vessel_at_the_interface():
    """A tube crossing the interface, narrowed by bone 3 voxels beside it: the plain
    minimum-risk cut divides it at the narrowing, the division-site factor at the
    interface."""
    tis = np.full((24, 15, 15), int(Tissue.CSF), np.uint8)
    yy, xx = np.mgrid[:15, :15]
    disc = (yy - 7) ** 2 + (xx - 7) ** 2 <= 9
    tis[:, disc] = Tissue.VESSEL
    tis[14:16, :5, :] = Tissue.BONE  # the narrowing, on B's side
    owner = np.where(np.indices(tis.shape)[0] < 12, 1, 2).astype(np.uint8)
    band = np.zeros(tis.shape, bool)
    band[2:-2] = True
    iface = (np.indices(tis.shape)[0] == 11) | (np.indices(tis.shape)[0] == 12)
    from twinsep.separate.vessels import interface_distance

    vox = np.argwhere(tis > 0)
    dist = np.zeros(tis.shape, np.float32)
    dist[tuple(vox.T)] = interface_distance(vox, iface, (1.0, 1.0, 1.0))
    where = {}
    for ref in (0.0, 1.0):
        r = replace(load_risk(), division_reference_mm=ref)
        out, _, _ = solve_band(r.voxel_cost(tis, None, dist), tis > 0, owner, band,
                               (1.0, 1.0, 1.0))
        ks = np.concatenate([lo[0] for ax, lo, _ in cut_faces(out) if ax == 0])
        where[ref] = set(ks.tolist())
    assert where[0.0] <= {13, 14, 15} and where[1.0] <= {11}


# --- phantoms at 2 mm and 1 mm: the crossings against the truth ------------------------
def _labelled_section(ph, world: np.ndarray) -> float | None:
    """Reference cross-section (mm2) of the labelled vessel at a truth crossing: the
    vessel voxels (nearest-voxel lookup on a 0.05 mm grid) in planes perpendicular to the
    analytic connector through the point, averaged over +-1 mm along it. None when the
    crossing is not in the label map (no vessel component near it crosses the identity
    interface)."""
    from twinsep.phantom.build import layout
    from twinsep.phantom.vessels import build_vessels

    spec = ph.spec
    lay = layout(spec)
    ves = build_vessels(lay.a, lay.b, lay.fields, shared=True, conjoined=True,
                        centre=lay.junction_centre, c=lay.c, e1=lay.e1, e2=lay.e2,
                        undulation_mm=spec.undulation, separate=False)
    seg = min(ves.connectors, key=lambda s: float(s.distance(world[None])[0]))
    d = (seg.b - seg.a) / np.linalg.norm(seg.b - seg.a)
    u = np.cross(d, [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    g = np.arange(-4.0, 4.0001, 0.05)
    uu, vv = (a.ravel() for a in np.meshgrid(g, g))
    tis = ph.tissues.array
    areas = []
    for s in (-1.0, -0.5, 0.0, 0.5, 1.0):
        pts = world + s * d + uu[:, None] * u + vv[:, None] * v
        kji = np.rint(ph.tissues.world_to_index(pts)).astype(int)
        areas.append(float(np.count_nonzero(tis[tuple(kji.T)] == Tissue.VESSEL)) * 0.05**2)
    # present in the labels: a vessel component near the point holds both twins' voxels
    lab, _ = ndi.label(tis == Tissue.VESSEL, structure=np.ones((3, 3, 3), bool))
    p = np.rint(ph.tissues.world_to_index(world)).astype(int)
    reach = int(np.ceil((ph.tissues.spacing[0] + 1.0) / ph.tissues.spacing[0]))
    near = lab[tuple(slice(max(c - reach, 0), c + reach + 1) for c in p)]
    own = ph.owner.array
    for comp in np.unique(near[near > 0]):
        m = lab == comp
        if (own[m] == 1).any() and (own[m] == 2).any():
            return float(np.mean(areas))
    return None


def _check_crossings(make_phantom_obj, spacing: float,
                     kind: str) -> list[tuple[float, float, float, float]]:
    ph = make_phantom_obj(spacing=spacing, **_phantom_kw(kind))
    sep = separate(ph.tissues, ph.owner, alternatives=False)
    cx = sep.summary["crossing_vessels"]
    truth = [t for t in ph.truth["shared_vessel"]["crossings"]]
    present = [(t, _labelled_section(ph, np.asarray(t["world_mm"]))) for t in truth]
    present = [(t, ref) for t, ref in present if ref is not None]
    # one to one: as many cut crossings as truth crossings in the label map, each within
    # one voxel + 1 mm of its own truth crossing
    assert len(cx) == len(present)
    tol = spacing + 1.0
    out = []
    used = set()
    for c in cx:
        dist = [np.linalg.norm(np.subtract(c["world_mm"], t["world_mm"])) for t, _ in present]
        j = int(np.argmin(dist))
        assert j not in used and dist[j] <= tol
        used.add(j)
        t, ref = present[j]
        # the cross-section perpendicular to the vessel: that of the labelled vessel
        assert c["cross_section_mm2"] == pytest.approx(ref, rel=0.25)
        out.append((dist[j], c["cross_section_mm2"], ref, t["cross_section_mm2"]))
    return out


@pytest.mark.parametrize("kind", ["sinus", "nosinus", "oblique"])
def test_crossings_match_the_truth_at_2mm(make_phantom_obj, kind):
    got = _check_crossings(make_phantom_obj, 2.0, kind)
    assert len(got) == {"sinus": 2, "nosinus": 0, "oblique": 1}[kind]


@pytest.mark.slow
def test_crossings_match_the_truth_at_1mm(make_phantom_obj):
    got = _check_crossings(make_phantom_obj, 1.0, "sinus")
    assert len(got) == 2
    assert max(g[0] for g in got) <= 1.5
