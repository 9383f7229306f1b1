"""The command line shell: help, version, usage errors."""

from __future__ import annotations

import subprocess
import sys

from twinsep.cli import main


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("ingest", "phantom"):
        assert command in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert "twinsep" in capsys.readouterr().out


def test_unknown_command_exits_2():
    assert main(["no-such-command"]) == 2


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from twinsep.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('SimpleITK', 'scipy', 'skimage', 'matplotlib', 'ortools', 'pydicom')"
        " if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "HEAVY="
