"""One shape for every stage: a package named for its command declaring one ``Stage``;
one progress type; the case's log."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from twinsep.casefolder import Case
from twinsep.pipeline import STAGES, plan_settings, run_plan, run_stage
from twinsep.progress import counted, silent, within


def test_each_stage_is_a_package_named_for_its_command() -> None:
    from typer.main import get_command

    from twinsep.cli import app

    commands = set(get_command(app).commands)
    for st in STAGES:
        pkg = importlib.import_module(f"twinsep.{st.name}")
        assert pkg.STAGE is st, st.name
        assert st.name in commands, st.name
        assert importlib.import_module(f"twinsep.{st.name}.case").STAGE is st
        assert st.title and st.hint and st.outputs
        for item in st.outputs:
            assert item.startswith("plan:") or not Path(item).is_absolute()


def test_within_maps_a_sub_step_into_its_range() -> None:
    seen: list[tuple[str, float]] = []
    outer = within(lambda m, f: seen.append((m, f)), 0.5, 1.0)
    inner = within(outer, 0.0, 0.5)
    inner("a", 0.0)
    inner("b", 1.0)
    inner("c", 7.0)  # clipped: a sub-step never runs past its range
    outer("d", -1.0)
    assert seen == [("a", 0.5), ("b", 0.75), ("c", 0.75), ("d", 0.5)]
    assert within(None, 0, 1) is silent


def test_counted_reports_each_item() -> None:
    seen: list[tuple[str, float]] = []
    items = list(counted(lambda m, f: seen.append((m, f)), "meshes", "xyz", 3))
    assert items == ["x", "y", "z"]
    assert seen == [("meshes (1/3)", 0.0), ("meshes (2/3)", 1 / 3), ("meshes (3/3)", 2 / 3),
                    ("meshes", 1.0)]


def test_the_case_log_after_a_plan(tmp_path: Path, make_phantom_case) -> None:
    ph = make_phantom_case(fusion="total", spacing=3.0)
    out = tmp_path / "case"
    run_plan(plan_settings(ph / "ct.nii.gz", stages=1), out, until="segment")
    log = (out / ".twinsep" / "twinsep.log").read_text()
    lines = log.splitlines()
    assert any("twinsep plan:" in line and '"twinsep":' in line and '"numpy":' in line
               for line in lines)  # versions
    assert any("segment: settings" in line and '"vessel_hu"' in line for line in lines)
    assert any("ingest: done in" in line for line in lines)
    assert any("plan:" in line and "peak memory" in line for line in lines)
    # paths by file name only: no folder of the scan or of the case in the log
    assert str(ph) not in log and str(tmp_path) not in log
    assert "ct.nii.gz" in log

    # a stage run alone logs into the same file; a failure is logged with its settings
    from twinsep.errors import InputError
    from twinsep.segment import STAGE, SegmentSettings

    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputError):
        run_stage(STAGE, Case(out), SegmentSettings(tissues=bad))
    last = (out / ".twinsep" / "twinsep.log").read_text().splitlines()[-1]
    assert "ERROR" in last and "segment failed" in last and "bad.nii.gz" in last


def test_no_log_in_a_folder_twinsep_did_not_make(tmp_path: Path) -> None:
    from twinsep.errors import InputError
    from twinsep.segment import STAGE, SegmentSettings

    folder = tmp_path / "mine"
    folder.mkdir()
    with pytest.raises(InputError):
        run_stage(STAGE, Case(folder), SegmentSettings())
    assert list(folder.iterdir()) == []


def test_quiet_and_verbose(tmp_path: Path, make_phantom_case, capsys) -> None:
    from twinsep.cli import main

    ph = make_phantom_case(fusion="total", spacing=3.0)
    out = tmp_path / "case"
    assert main(["--quiet", "ingest", str(ph / "ct.nii.gz"), "--out", str(out)]) == 0
    assert capsys.readouterr().err == ""
    assert main(["--verbose", "segment", str(out)]) == 0
    err = capsys.readouterr().err
    assert "segment: settings" in err and "tissues from ct" in err  # the log, as it runs
    assert "segment (ct):" in err  # and the command's own summary
    assert main(["segment", str(out)]) == 0
    assert "segment: settings" not in capsys.readouterr().err  # not without --verbose
    # a bad landmarks file is refused before any work, in one line
    bad = tmp_path / "marks.json"
    bad.write_text("{not json")
    assert main(["--quiet", "identify", str(out), "--landmarks", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not a JSON landmarks file" in err and len(err.strip().splitlines()) == 1
    assert not (out / "labels" / "twins.nii.gz").exists()
    # errors are printed even with --quiet
    assert main(["--quiet", "segment", str(tmp_path / "nowhere")]) == 2
    assert "error:" in capsys.readouterr().err
