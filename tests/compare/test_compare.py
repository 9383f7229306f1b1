"""Growth between scans: the phantom's growth option and ``twinsep compare``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

SPACING = 2.0  # mm: small phantoms (3 mm under-resolves the 2-4 mm sinuses)
AGE = 12.0  # months; the base phantom stands for 6 months


def _case(tmp: Path, phantom_dir: Path, name: str, *, swap: bool = False) -> Path:
    """A case folder from a phantom: its CT ingested, its true labels as the case's labels."""
    from twinsep.casefolder import Case
    from twinsep.image import Volume
    from twinsep.ingest.read import ingest
    from twinsep.labels import resolve_owner

    out = tmp / name
    ingest(phantom_dir / "ct.nii.gz", out)
    case = Case(out)
    case.labels.mkdir(exist_ok=True)
    t = Volume.read(phantom_dir / "tissues.nii.gz")
    own = resolve_owner(t, Volume.read(phantom_dir / "owner.nii.gz"))
    if swap:  # identify named the twins the other way round
        own = np.where(own == 1, 2, np.where(own == 2, 1, own)).astype(np.uint8)
    t.write(case.tissues)
    t.with_array(own).write(case.twins)
    return out


@pytest.fixture(scope="module")
def pair(tmp_path_factory, make_phantom_case):
    """``(earlier phantom, later phantom, earlier case, later case)``: the default phantom and
    the same twins at 12 months. The earlier case is only read (compare writes ``growth``
    into the later one)."""
    tmp = tmp_path_factory.mktemp("growth")
    ph_e = make_phantom_case(spacing=SPACING)
    ph_l = make_phantom_case(spacing=SPACING, age_months=AGE)
    return ph_e, ph_l, _case(tmp, ph_e, "earlier"), _case(tmp, ph_l, "later")


def _truth(p: Path) -> dict:
    return json.loads((p / "truth.json").read_text())


def test_default_phantom_unchanged_by_growth_option():
    from twinsep.phantom import PhantomSpec
    from twinsep.phantom.spec import head_circumference_cm

    spec = PhantomSpec()
    assert not spec.grows
    assert "age_months" not in spec.dump() and "placement" not in spec.dump()
    g = PhantomSpec(age_months=AGE).growth()
    assert g.scale == pytest.approx(head_circumference_cm(AGE) / head_circumference_cm(6.0))
    assert 1.03 < g.scale < 1.1
    assert g.fusion_depth_mm > spec.depth_mm and g.sinus_radius_mm > 3.0
    assert head_circumference_cm(0) < head_circumference_cm(6) < head_circumference_cm(24)


def test_grown_phantom_truth(pair):
    ph_e, ph_l, _, _ = pair
    te, tl = _truth(ph_e), _truth(ph_l)
    assert "growth" not in te
    g = tl["growth"]
    assert g["age_months"] == AGE
    m = np.asarray(g["placement"]["matrix"])
    assert np.allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-5)
    angle = np.degrees(np.arccos((np.trace(m[:3, :3]) - 1) / 2))
    assert 5 < angle < 12 and 5 < np.linalg.norm(m[:3, 3]) < 12
    assert tl["junction_area_cm2"] > 1.1 * te["junction_area_cm2"]
    assert tl["shared_vessel_volume_ml"] > 1.3 * te["shared_vessel_volume_ml"]
    for twin in "AB":
        assert tl["tissue_volumes_ml"][twin]["brain"] > 1.1 * te["tissue_volumes_ml"][twin]["brain"]
    assert tl["classification"] == te["classification"]


def test_compare_known_growth(pair, tmp_path):
    from twinsep.casefolder import Case, load_plan
    from twinsep.compare import compare_cases

    ph_e, ph_l, e, lt = pair
    cmp = compare_cases(e, lt, tmp_path / "out", months=6.0)
    g = cmp.growth
    te, tl = _truth(ph_e), _truth(ph_l)
    for key in ("shared_vessel_volume_ml", "junction_area_cm2"):
        true_change = tl[key] - te[key]
        assert g[key]["change"] == pytest.approx(true_change, rel=0.10), key
        assert g[key]["change_per_month"] == pytest.approx(g[key]["change"] / 6.0, rel=1e-3)
    assert not g["twins_swapped"] and g["same_twins"] and g["warnings"] == []
    # registration error: true brain centroids of the later scan mapped to the earlier frame
    for twin in "AB":
        mapped = cmp.registration.to_earlier(np.array(tl["brain_centroids_mm"][twin]))[0]
        assert np.linalg.norm(mapped - te["brain_centroids_mm"][twin]) < 2.0
        assert g["registration"]["brain_centroid_error_mm"][twin] < 2.0
    # outputs
    assert (tmp_path / "out" / "growth.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert saved["junction_area_cm2"]["later"] == g["junction_area_cm2"]["later"]
    plan = load_plan(Case(lt))
    for key in ("junction_area_cm2", "shared_vessel_volume_ml"):
        assert set(plan["growth"][key]) == {"earlier", "later", "change", "change_per_month"}
    assert plan["growth"]["months"] == 6.0
    assert plan["figures"]["growth"] == "figures/growth.png"
    assert (Path(lt) / "figures" / "growth.png").exists()
    # deterministic
    again = compare_cases(e, lt, tmp_path / "out2", months=6.0, write_plan=False)
    assert ((tmp_path / "out2" / "comparison.json").read_text()
            == (tmp_path / "out" / "comparison.json").read_text())
    assert again.growth == g


def test_swapped_twins_are_matched_by_position(pair, tmp_path, make_phantom_case):
    """A later scan placed upside down whose identify stage named the twins the other way."""
    from twinsep.compare import compare

    e = pair[2]  # the default phantom's case
    ph_l = make_phantom_case(spacing=SPACING, age_months=AGE,
                             placement=(180.0, 0.0, 8.0, 5.0, -4.0, 6.0))
    lt = _case(tmp_path, ph_l, "later", swap=True)
    cmp = compare(e, lt)
    g = cmp.growth
    assert g["twins_swapped"] is True
    tl = _truth(ph_l)
    for twin in "AB":
        assert (g["tissue_volumes_ml"][twin]["brain"]["later"]
                == pytest.approx(tl["tissue_volumes_ml"][twin]["brain"], rel=0.02))
        assert g["registration"]["brain_centroid_error_mm"][twin] < 2.0
    # no dates, no --months: changes but no rates
    assert g["months"] is None
    assert g["junction_area_cm2"]["change"] > 0
    assert g["junction_area_cm2"]["change_per_month"] is None
    assert any("per-month" in n for n in g["notes"])


def test_unrelated_cases_are_refused(pair, tmp_path, make_phantom_case):
    from twinsep.compare import compare
    from twinsep.errors import InputError

    e = pair[2]  # the default phantom's case
    other = make_phantom_case(spacing=SPACING, fusion="partial", long_axis_angle=110.0,
                              axial_rotation=90.0, seed=3)
    lt = _case(tmp_path, other, "other")
    with pytest.raises(InputError, match="do not look like the same twins"):
        compare(e, lt, months=3.0)
    g = compare(e, lt, months=3.0, force=True).growth
    assert len(g["warnings"]) >= 2  # brain overlap and uneven stretch
    assert g["same_twins"] is False and g["warnings"]


def test_cli(pair, tmp_path):
    from twinsep.cli import main

    _, _, e, lt = pair
    copy = tmp_path / "later"
    shutil.copytree(lt, copy)
    plan_before = (copy / "plan.json").read_bytes() if (copy / "plan.json").exists() else None
    assert main(["compare", str(e), str(copy), "--out", str(tmp_path / "o"),
                 "--months", "6", "--no-plan"]) == 0
    assert (tmp_path / "o" / "comparison.json").exists()
    # --no-plan leaves the later case's plan.json exactly as it was
    plan_after = (copy / "plan.json").read_bytes() if (copy / "plan.json").exists() else None
    assert plan_after == plan_before
    assert main(["compare", str(e), str(tmp_path / "missing"), "--out",
                 str(tmp_path / "o2")]) == 2


def test_months_from_the_ages_at_the_scans(pair, tmp_path):
    """Without --months, the months come from ``source.age_at_scan_days`` (ingest keeps
    that interval, never the study dates); a later scan at a younger age is flagged."""
    from twinsep.casefolder import read_json, write_json
    from twinsep.compare import compare_cases

    _, _, e, lt = pair
    cases = {}
    for name, src, age in (("e", e, 182.0), ("l", lt, 365.0)):
        cases[name] = tmp_path / name
        shutil.copytree(src, cases[name])
        info = read_json(cases[name] / "case.json")
        info["source"]["age_at_scan_days"] = age
        write_json(cases[name] / "case.json", info)
    g = compare_cases(cases["e"], cases["l"], tmp_path / "out").growth
    assert g["months"] == pytest.approx((365.0 - 182.0) / (365.25 / 12), abs=1e-4)
    assert "ages at the scans, 182 and 365 days" in g["months_source"]
    assert "20" not in g["months_source"]  # no date
    with pytest.raises(Exception, match="younger age"):
        compare_cases(cases["l"], cases["e"], tmp_path / "out2")
