"""Tests of ``twinsep.separation``: the minimum-risk cut, alternatives, staging, CLI."""

from __future__ import annotations

import functools
import itertools
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.labels import Tissue
from twinsep.separation import load_risk, plan_stages, pyramid_cut, separate, solve_band
from twinsep.separation.graphcut import pyramid_factors
from twinsep.separation.metrics import cut_faces, face_measures
from twinsep.separation.risk import RiskModel

SPACING = 3.0  # mm; small phantoms keep the suite fast


# --- phantoms --------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _phantom(**kw):
    from twinsep.phantom import PhantomSpec, make_phantom

    return make_phantom(PhantomSpec(spacing=(SPACING, SPACING, SPACING), **kw))


def _phantom_kw(kind: str) -> dict:
    return {
        "sinus": {},
        "nosinus": {"shared_sinus": False},
        "partial": {"fusion": "partial", "fusion_depth": 4.0},
        "oblique": {"oblique": 25.0, "axial_rotation": 40.0},
    }[kind]


@functools.lru_cache(maxsize=4)
def _separated(kind: str):
    ph = _phantom(**_phantom_kw(kind))
    return ph, separate(ph.tissues, ph.owner)


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
    with pytest.raises(InputError, match="missing"):
        load_risk(bad)
    bad.write_text("tissue_cost_per_mm2: {scalp: 1, bone: 2, dura: 3, brain: -4, vessel: 5}\n")
    with pytest.raises(InputError, match="positive"):
        load_risk(bad)
    with pytest.raises(InputError, match="no such"):
        load_risk(tmp_path / "none.yaml")


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
def test_cut_lies_on_the_true_interface(kind):
    ph, sep = _separated(kind)
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


def test_shared_sinus_crossed_where_expected():
    ph, sep = _separated("sinus")
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


def test_nothing_crossed_without_shared_vessel():
    _, sep = _separated("nosinus")
    assert sep.summary["crossing_vessels"] == []
    assert sep.summary["cut_area_cm2"]["vessel"] == 0.0
    assert len(sep.summary["staging"]["stages"]) == 1


def test_no_brain_cut_where_brains_do_not_touch():
    ph, sep = _separated("partial")
    assert ph.truth["brain_min_distance_mm"] > 0
    assert sep.summary["cut_area_cm2"]["brain"] == 0.0


def test_alternatives_keep_the_sinus_whole():
    from twinsep.separation.alternatives import shared_sinus, sinus_constraints
    from twinsep.separation.core import _fill_owner
    from twinsep.separation.metrics import vessel_components

    ph, sep = _separated("sinus")
    tis = ph.tissues.array
    vlab = vessel_components(tis)
    own0 = _fill_owner(ph.owner.array, tis > 0)
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


def test_cli_separate_writes_results_deterministically(tmp_path):
    from twinsep.cli import main

    ph = _phantom()
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


def test_cli_bad_input(tmp_path):
    from twinsep.cli import main

    assert main(["separate", str(tmp_path / "nope")]) == 2
    case = _case(tmp_path, _phantom())
    assert main(["separate", str(case.root), "--choose", "zzz"]) == 2
    assert main(["separate", str(case.root), "--plane", "1,2,3"]) == 2
    assert main(["separate", str(case.root), "--choose", "plane"]) == 2
