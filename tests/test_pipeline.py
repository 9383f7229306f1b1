"""The pipeline: input hashing, skipping, --force / --from, failures and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twinsep.casefolder import Case, read_json
from twinsep.errors import InputError
from twinsep.pipeline import (
    STAGES,
    StageError,
    hash_input,
    load_state,
    load_timings,
    plan_settings,
    run_plan,
)


@pytest.fixture(scope="module")
def phantom3(make_phantom_case) -> Path:
    """A 3 mm total phantom folder (cheap to ingest and segment)."""
    return make_phantom_case(fusion="total", spacing=3.0)


def test_stage_order() -> None:
    assert tuple(s.name for s in STAGES) == (
        "ingest", "segment", "identify", "separate", "simulate", "models", "view", "schedule",
        "report")
    # plan.json (1.0.0, 1.1.0) and the case's state files call the view stage "viewer"
    assert tuple(s.key for s in STAGES) == (
        "ingest", "segment", "identify", "separate", "simulate", "models", "viewer",
        "schedule", "report")


def test_hash_input_file_and_folder(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    h1 = hash_input(f)
    f.write_bytes(b"abd")
    assert hash_input(f) != h1
    d = tmp_path / "series"
    d.mkdir()
    (d / "1.dcm").write_bytes(b"x")
    (d / "2.dcm").write_bytes(b"y")
    h2 = hash_input(d)
    (d / "2.dcm").write_bytes(b"z")
    assert hash_input(d) != h2
    with pytest.raises(InputError):
        hash_input(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError):
        hash_input(empty)


def test_seeds_come_in_pairs(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        plan_settings(tmp_path, seed_a=(0.0, 0.0, 0.0))


def test_decisions_are_checked_before_any_stage(tmp_path: Path) -> None:
    scan = tmp_path / "scan.nii.gz"
    scan.write_bytes(b"")
    with pytest.raises(InputError, match="--choose must be one of"):
        plan_settings(scan, choose="bogus")
    with pytest.raises(InputError, match="needs --plane"):
        plan_settings(scan, choose="plane")
    with pytest.raises(InputError, match="--risk"):
        plan_settings(scan, risk=tmp_path / "nope.yaml")
    assert plan_settings(scan, choose="sinus-to-b").separate.choose == "sinus-to-b"
    assert plan_settings(scan, choose="c").separate.choose == "sinus-to-b"


def test_missing_scan_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(StageError) as info:
        run_plan(plan_settings(tmp_path / "nope.nii.gz"), tmp_path / "case")
    assert info.value.stage == "ingest"
    assert info.value.exit_code == 2
    assert not (tmp_path / "case").exists()


def test_refuses_a_foreign_non_empty_folder(tmp_path: Path, phantom3: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("precious")
    with pytest.raises(StageError) as info:
        run_plan(plan_settings(phantom3 / "ct.nii.gz"), out, until="ingest")
    assert info.value.exit_code == 2 and "not made by twinsep" in str(info.value)
    assert (out / "thesis.txt").read_text() == "precious"
    # and nothing of twinsep's is left in it (no timings.json, no .twinsep/)
    assert [p.name for p in out.iterdir()] == ["thesis.txt"]


def test_a_users_case_json_or_twinsep_folder_does_not_make_a_case(tmp_path: Path,
                                                                  phantom3: Path) -> None:
    """Two plans into a folder holding a case.json and a .twinsep/ of the user's: both
    refused, nothing written or deleted (the first used to create .twinsep/ and the second
    to wipe the folder)."""
    out = tmp_path / "mine"
    (out / ".twinsep").mkdir(parents=True)
    (out / "case.json").write_text('{"mine": true}')
    (out / "thesis.txt").write_text("precious")
    for _ in range(2):
        with pytest.raises(StageError) as info:
            run_plan(plan_settings(phantom3 / "ct.nii.gz"), out)
        assert info.value.exit_code == 2 and "not made by twinsep" in str(info.value)
    assert sorted(p.name for p in out.rglob("*")) == [".twinsep", "case.json", "thesis.txt"]
    assert (out / "case.json").read_text() == '{"mine": true}'


def test_out_that_is_a_file_is_refused(tmp_path: Path, phantom3: Path, capsys) -> None:
    from twinsep.cli import main

    out = tmp_path / "notes.txt"
    out.write_text("mine")
    assert main(["plan", str(phantom3 / "ct.nii.gz"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "exists and is not a folder" in err and "Traceback" not in err
    assert "intact" not in err  # there are no earlier results to speak of
    assert out.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.txt"]


def test_skip_force_from(tmp_path: Path, phantom3: Path) -> None:
    out = tmp_path / "case"
    settings = plan_settings(phantom3 / "ct.nii.gz")
    r1 = run_plan(settings, out, until="segment")
    assert [o.status for o in r1.outcomes] == ["ran", "ran"]
    state = load_state(Case(out))
    assert set(state) == {"ingest", "segment"}
    timings = load_timings(Case(out))
    assert timings["stages"]["segment"]["status"] == "ran"
    assert timings["stages"]["segment"]["seconds"] > 0
    plan_bytes = (out / "plan.json").read_bytes()
    assert b"seconds" not in plan_bytes  # timings live beside plan.json
    assert read_json(out / "plan.json")["case"]["timings"] == "timings.json"

    r2 = run_plan(settings, out, until="segment")
    assert [o.status for o in r2.outcomes] == ["skipped", "skipped"]
    assert (out / "plan.json").read_bytes() == plan_bytes

    r3 = run_plan(settings, out, until="segment", from_stage="segment")
    assert [o.status for o in r3.outcomes] == ["skipped", "ran"]
    assert (out / "plan.json").read_bytes() == plan_bytes  # deterministic

    r4 = run_plan(settings, out, until="segment", force=True)
    assert [o.status for o in r4.outcomes] == ["ran", "ran"]
    assert (out / "plan.json").read_bytes() == plan_bytes

    # an output changed behind the pipeline's back: that stage is redone
    (out / "labels" / "tissues.nii.gz").unlink()
    r5 = run_plan(settings, out, until="segment")
    assert [o.status for o in r5.outcomes] == ["skipped", "ran"]


def test_failure_keeps_earlier_results(tmp_path: Path, phantom3: Path) -> None:
    out = tmp_path / "case"
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not an image at all")
    settings = plan_settings(phantom3 / "ct.nii.gz", tissues=bad)
    with pytest.raises(StageError) as info:
        run_plan(settings, out, until="segment")
    assert info.value.stage == "segment"
    assert info.value.exit_code == 2
    assert "to fix" in str(info.value)
    assert (out / "scan.nii.gz").exists() and (out / "case.json").exists()
    assert "segment" not in load_state(Case(out))
    assert load_timings(Case(out))["stages"]["segment"]["status"] == "failed"
    # fixed input: the finished stage is skipped, the failed one runs
    good = plan_settings(phantom3 / "ct.nii.gz", tissues=phantom3 / "tissues.nii.gz")
    r = run_plan(good, out, until="segment")
    assert [o.status for o in r.outcomes] == ["skipped", "ran"]
    assert read_json(out / "plan.json")["segmentation"]["source"] == "import"


def test_cli_bad_stage_name(tmp_path: Path, phantom3: Path, capsys) -> None:
    from twinsep.cli import main

    code = main(["plan", str(phantom3 / "ct.nii.gz"), "--out", str(tmp_path / "c"),
                 "--from", "nonsense"])
    assert code == 2
    assert "unknown stage" in capsys.readouterr().err


def test_cli_failing_stage_exit_code(tmp_path: Path, phantom3: Path, capsys) -> None:
    from twinsep.cli import main

    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"junk")
    code = main(["plan", str(phantom3 / "ct.nii.gz"), "--out", str(tmp_path / "c"),
                 "--tissues", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert "stage 'segment' failed" in err
    assert (tmp_path / "c" / "scan.nii.gz").exists()
    state = json.loads((tmp_path / "c" / ".twinsep" / "stages.json").read_text())
    assert "ingest" in state["stages"]


# --- one writer per case, and errors of the machine ----------------------------------------
_HOLD = """
import sys, time
from twinsep.casefolder import case_lock
with case_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_case_in_use_is_refused_in_one_line(tmp_path: Path, phantom3: Path, capsys) -> None:
    import subprocess
    import sys

    from twinsep.cli import main

    case = tmp_path / "case"
    assert main(["ingest", str(phantom3 / "ct.nii.gz"), "--out", str(case)]) == 0
    before = sorted(p.name for p in case.rglob("*"))
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(case)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        for argv in (["plan", str(phantom3 / "ct.nii.gz"), "--out", str(case)],
                     ["segment", str(case)]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert "another twinsep command is working on this case" in err, err
            assert "Traceback" not in err and "intact" not in err
        assert sorted(p.name for p in case.rglob("*")) == before
    finally:
        holder.kill()
        holder.wait()
    assert main(["segment", str(case)]) == 0  # free again once the other has stopped


def test_lock_is_reentrant_and_leaves_nothing_behind(tmp_path: Path) -> None:
    from twinsep.casefolder import case_lock

    new = tmp_path / "a" / "case"
    with case_lock(new), case_lock(new):  # the plan holds it, its stages take it again
        assert new.is_dir()
    assert not (tmp_path / "a").exists()  # made for the lock, still empty: removed


_FULL_DISK = """
import resource, sys
from twinsep.cli import main
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # writes beyond fail: EFBIG
sys.exit(main(["plan", sys.argv[1], "--out", sys.argv[2]]))
"""


def test_a_full_disk_is_one_line_and_exit_2(tmp_path: Path, phantom3: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "case"
    res = subprocess.run([sys.executable, "-c", _FULL_DISK, str(phantom3 / "ct.nii.gz"),
                          str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    said = res.stdout + res.stderr
    errors = [ln for ln in said.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, said
    assert "cannot write scan.nii.gz" in errors[0] and "choose another --out" in errors[0]
    assert "Traceback" not in said and "details in None" not in said and "intact" not in said
    # the scan did not fit: nothing of the case is left (ITK wrote a cut-off scan.nii.gz
    # without saying so before twinsep checked every NIfTI it writes)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []
