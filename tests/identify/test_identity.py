"""Twin identity: Dice against the phantom's owner map, seeds, the A/B rule, odd inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.labels import Owner, Tissue

NEAR_MM = 25.0


def _dice(owner: np.ndarray, phantom, near: bool) -> float:
    from twinsep.identify.identity import dice_scores

    sp = phantom.owner.spacing_kji
    d = dice_scores(owner, phantom.owner.array, sp, NEAR_MM if near else None)
    return min(d.values())


# A representative 2 mm set: easy, unequal twins, wide wavy brain contact, off-centre.
UNIT_SET = {
    "total": {"fusion": "total"},
    "unequal": {"fusion": "total", "scale_a": 0.80, "scale_b": 0.58},
    "wavy": {"fusion": "total", "fusion_depth": 40.0, "undulation": 5.0},
    "offcentre": {"fusion": "total", "junction_offset": 25.0, "axial_rotation": 90.0},
}


@pytest.mark.parametrize("name", list(UNIT_SET))
def test_dice_from_tissues(make_phantom_obj, make_identity, name: str) -> None:
    ph = make_phantom_obj(**UNIT_SET[name])
    r = make_identity("tissues", **UNIT_SET[name])
    assert r.conjoined
    assert _dice(r.owner.array, ph, near=False) >= 0.98
    assert _dice(r.owner.array, ph, near=True) >= 0.97


@pytest.mark.parametrize("name", ["total", "wavy"])
def test_dice_from_ct(make_phantom_obj, make_identity, name: str) -> None:
    ph = make_phantom_obj(**UNIT_SET[name])
    r = make_identity("ct", **UNIT_SET[name])  # identify(segment_ct(ph.ct))
    assert _dice(r.owner.array, ph, near=False) >= 0.97
    assert _dice(r.owner.array, ph, near=True) >= 0.95


def test_nearest_seed_baseline_is_worse_on_unequal_twins(make_phantom_obj,
                                                         make_identity) -> None:
    """The benchmark's point, kept honest: a plain nearest-seed split fails here."""
    from twinsep.identify.identity import identify

    ph = make_phantom_obj(**UNIT_SET["unequal"])
    good = _dice(make_identity("tissues", **UNIT_SET["unequal"]).owner.array, ph, near=True)
    naive = _dice(identify(ph.tissues, method="nearest").owner.array, ph, near=True)
    assert naive < good - 0.05


def test_owner_covers_foreground_on_scan_grid(make_phantom_obj, make_identity) -> None:
    ph = make_phantom_obj(**UNIT_SET["total"])
    r = make_identity("tissues", **UNIT_SET["total"])
    own = r.owner.array
    assert own.dtype == np.uint8 and r.owner.same_grid(ph.tissues)
    fg = ph.tissues.array > 0
    assert np.all(own[fg] > 0) and np.all(own[~fg] == 0)
    assert set(np.unique(own)) == {0, 1, 2}


def test_deterministic(make_phantom_obj, make_identity) -> None:
    """A second run gives the same owner map as the session's first one."""
    from twinsep.identify.identity import identify

    ph = make_phantom_obj(**UNIT_SET["unequal"])
    first = make_identity("tissues", **UNIT_SET["unequal"])
    assert np.array_equal(identify(ph.tissues).owner.array, first.owner.array)


def test_ab_rule_first_along_axis_of_largest_difference(make_phantom_obj,
                                                         make_identity) -> None:
    ph = make_phantom_obj(**UNIT_SET["total"])
    r = make_identity("tissues", **UNIT_SET["total"])
    a, b = np.array(r.brain_centroids_mm["A"]), np.array(r.brain_centroids_mm["B"])
    axis = int(np.argmax(np.abs(a - b)))
    assert a[axis] < b[axis]
    assert "first" in r.twin_a_rule and "xyz"[axis] in r.twin_a_rule.split("Here:")[1]
    # and it agrees with the phantom's own centroids
    ta = np.array(ph.truth["brain_centroids_mm"]["A"])
    assert np.linalg.norm(a - ta) < 10.0


def test_ab_rule_follows_flipped_anatomy(make_phantom_obj) -> None:
    """Mirror the scan along k: the twin that was B now comes first and becomes A."""
    from twinsep.identify.identity import identify

    ph = make_phantom_obj(**UNIT_SET["total"])
    flipped = ph.tissues.with_array(np.ascontiguousarray(ph.tissues.array[::-1]))
    r = identify(flipped)
    truth = ph.owner.array[::-1]
    swapped = np.where(truth == Owner.A, Owner.B, np.where(truth == Owner.B, Owner.A, truth))
    fg = (truth == Owner.A) | (truth == Owner.B)
    assert np.mean(r.owner.array[fg] == swapped[fg]) > 0.98


def test_seeds_override_ab_order(make_phantom_obj, make_identity) -> None:
    from twinsep.identify.identity import identify

    ph = make_phantom_obj(**UNIT_SET["total"])
    auto = make_identity("tissues", **UNIT_SET["total"])
    swapped = identify(ph.tissues, seed_a_mm=auto.seed_b_mm, seed_b_mm=auto.seed_a_mm)
    assert swapped.seeds_given
    own, ref = swapped.owner.array, auto.owner.array
    fg = ref > 0
    assert np.mean(own[fg] == 3 - ref[fg]) > 0.99
    assert "seed" in swapped.twin_a_rule


def test_find_seeds_in_each_brain(make_phantom_obj) -> None:
    from twinsep.identify.identity import find_seeds

    ph = make_phantom_obj(**UNIT_SET["wavy"])
    a, b = find_seeds(ph.tissues)
    for seed, code in ((a, Owner.A), (b, Owner.B)):
        kji = np.round(ph.owner.world_to_index(seed)).astype(int)
        assert ph.owner.array[tuple(kji)] == code
        assert ph.tissues.array[tuple(kji)] == Tissue.BRAIN


def test_bad_seed_and_method() -> None:
    from twinsep.identify.identity import identify

    t = np.zeros((20, 20, 20), np.uint8)
    t[5:15, 5:15, 5:15] = Tissue.BRAIN
    vol = Volume(t)
    with pytest.raises(InputError, match="unknown identity method"):
        identify(vol, method="magic")
    with pytest.raises(InputError, match="both"):
        identify(vol, seed_a_mm=(10, 10, 10))
    with pytest.raises(InputError, match="from the nearest brain"):
        identify(vol, seed_a_mm=(10, 10, 10), seed_b_mm=(500, 10, 10))


def test_no_brain_is_input_error() -> None:
    from twinsep.identify.identity import identify

    t = np.zeros((20, 20, 20), np.uint8)
    t[4:16, 4:16, 4:16] = Tissue.SCALP
    with pytest.raises(InputError, match="no brain"):
        identify(Volume(t))


def test_one_head_is_input_error(phantom_separate) -> None:
    """One real phantom head (the other removed) has one brain centre."""
    from scipy import ndimage as ndi

    from twinsep.identify.identity import identify

    t = phantom_separate.tissues.array
    comp, _ = ndi.label(t > 0, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(comp.ravel())
    sizes[0] = 0
    one = np.where(comp == int(np.argmax(sizes)), t, 0).astype(np.uint8)
    with pytest.raises(InputError, match="only one head"):
        identify(phantom_separate.tissues.with_array(one))


def test_not_conjoined_distance(phantom_separate) -> None:
    from twinsep.identify.identity import identify

    r = identify(phantom_separate.tissues)
    assert not r.conjoined
    truth = phantom_separate.truth
    assert truth["conjoined"] is False
    assert abs(r.closest_distance_mm - truth["closest_distance_mm"]) <= 2 * max(
        phantom_separate.tissues.spacing
    )


# --- command line ----------------------------------------------------------------------------
def _case_from_phantom(src: Path, dst: Path, *, tissues: bool = True) -> Path:
    """A case folder (scan + labels/tissues) made from a phantom folder."""
    dst.mkdir(parents=True)
    shutil.copy(src / "ct.nii.gz", dst / "scan.nii.gz")
    if tissues:
        (dst / "labels").mkdir()
        shutil.copy(src / "tissues.nii.gz", dst / "labels" / "tissues.nii.gz")
    return dst


def test_cli_not_conjoined_exit_0(phantom_separate_case, tmp_path) -> None:
    from twinsep.cli import main

    case = _case_from_phantom(phantom_separate_case, tmp_path / "case")
    assert main(["identify", str(case)]) == 0
    plan = json.loads((case / "plan.json").read_text())
    assert plan["conjoined"] is False
    assert plan["closest_distance_mm"] > 0


def test_cli_one_head_exit_2(phantom_separate_case, tmp_path) -> None:
    from twinsep.cli import main

    case = _case_from_phantom(phantom_separate_case, tmp_path / "case")
    vol = Volume.read(case / "labels" / "tissues.nii.gz")
    from scipy import ndimage as ndi

    t = vol.array
    comp, _ = ndi.label(t > 0, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(comp.ravel())
    sizes[0] = 0
    vol.with_array(np.where(comp == int(np.argmax(sizes)), t, 0).astype(np.uint8)).write(
        case / "labels" / "tissues.nii.gz"
    )
    assert main(["identify", str(case)]) == 2
    assert not (case / "plan.json").exists()


def test_cli_no_brain_exit_2(phantom_separate_case, tmp_path) -> None:
    from twinsep.cli import main

    case = _case_from_phantom(phantom_separate_case, tmp_path / "case")
    vol = Volume.read(case / "labels" / "tissues.nii.gz")
    a = vol.array.copy()
    a[a == Tissue.BRAIN] = Tissue.CSF
    vol.with_array(a).write(case / "labels" / "tissues.nii.gz")
    assert main(["identify", str(case)]) == 2


def test_cli_missing_tissues_exit_2(phantom_separate_case, tmp_path, capsys) -> None:
    from twinsep.cli import main

    case = _case_from_phantom(phantom_separate_case, tmp_path / "case", tissues=False)
    assert main(["identify", str(case)]) == 2
    assert "twinsep segment" in capsys.readouterr().err


def test_cli_bad_seed_exit_2(phantom_total_case, tmp_path) -> None:
    from twinsep.cli import main

    case = _case_from_phantom(phantom_total_case, tmp_path / "case")
    assert main(["identify", str(case), "--seed-a", "1,2", "--seed-b", "1,2,3"]) == 2


def test_cli_conjoined_writes_owner_and_plan(phantom_total_case, tmp_path) -> None:
    from twinsep.cli import main
    from twinsep.identify.identity import dice_scores

    case = _case_from_phantom(phantom_total_case, tmp_path / "case")
    assert main(["identify", str(case)]) == 0
    own = Volume.read(case / "labels" / "twins.nii.gz")
    truth = Volume.read(phantom_total_case / "owner.nii.gz")
    assert own.array.dtype == np.uint8 and own.same_grid(truth)
    assert min(dice_scores(own.array, truth.array).values()) >= 0.98
    plan = json.loads((case / "plan.json").read_text())
    assert plan["conjoined"] is True
    assert plan["identity"]["method"] == "mincut"
    assert len(plan["identity"]["seed_a_mm"]) == 3
    for key in ("shared", "classification"):
        assert key in plan
    for rel in plan.get("figures", {}).values():
        assert (case / rel).is_file()


# --- the full sweep -------------------------------------------------------------------------
def _phantom_set() -> dict[str, dict]:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from bench_identity import PHANTOM_SET

    return PHANTOM_SET


def _sweep(make_phantom_obj, make_identity, name: str, spacing: float) -> list[str]:
    """Dice of ``identify`` on the true tissue map and on ``segment_ct`` of the CT (the
    session's cached runs, which test_classification.py's pipeline tests share)."""
    kw = dict(_phantom_set()[name])
    factor = kw.pop("spacing_factor", (1.0, 1.0, 1.0))
    kw["spacing"] = tuple(spacing * f for f in factor)
    ph = make_phantom_obj(**kw)
    failures = []
    for src, source, lo_all, lo_near in (
        ("tissues", "tissues", 0.98, 0.97),
        ("CT", "ct", 0.97, 0.95),
    ):
        own = make_identity(source, **kw).owner.array
        d_all, d_near = _dice(own, ph, near=False), _dice(own, ph, near=True)
        if d_all < lo_all or d_near < lo_near:
            failures.append(f"{name} {src}: {d_all:.4f} / {d_near:.4f}")
    return failures


@pytest.mark.parametrize("name", list(_phantom_set()))
def test_every_phantom_kind_2mm(make_phantom_obj, make_identity, name: str) -> None:
    """Every kind the generator makes, from the tissue map and from the CT alone."""
    assert not _sweep(make_phantom_obj, make_identity, name, 2.0)


#: The hardest kinds again at 1 mm (building a 1 mm phantom takes ~15 s).
SLOW_SET = ("wide wavy brain contact", "oblique anisotropic")


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_SET)
def test_hard_kinds_1mm(make_phantom_obj, make_identity, name: str) -> None:
    assert not _sweep(make_phantom_obj, make_identity, name, 1.0)
