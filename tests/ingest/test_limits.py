"""Issue 14 item 4: every ITK reader checks the declared size against the file and the memory
limit before allocating; truncated data and impossible headers are refused in one line."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from twinsep.cli import main
from twinsep.errors import InputError
from twinsep.ingest.read import ingest

#: A gzip NRRD of 1000^3 int16 voxels (1.86 GiB, within the default 4 GiB limit) whose
#: compressed data hold 100 bytes: the file is about 211 bytes.
_BOMB_HEADER = (b"NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\n"
                b"sizes: 1000 1000 1000\nspace directions: (1,0,0) (0,1,0) (0,0,1)\n"
                b"endian: little\nencoding: gzip\nspace origin: (0,0,0)\n\n")


def _bomb_nrrd(path: Path) -> Path:
    path.write_bytes(_BOMB_HEADER + gzip.compress(bytes(100), mtime=0))
    return path


def _bomb_mha(path: Path) -> Path:
    import zlib

    head = (b"ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = "
            b"False\nCompressedData = True\nTransformMatrix = 1 0 0 0 1 0 0 0 1\nOffset = 0 0 "
            b"0\nElementSpacing = 1 1 1\nDimSize = 1000 1000 1000\nElementType = MET_SHORT\n"
            b"ElementDataFile = LOCAL\n")
    path.write_bytes(head + zlib.compress(bytes(100)))
    return path


def _bomb_nii_gz(path: Path) -> Path:
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_shape((1000, 1000, 1000))
    header.set_data_dtype(np.int16)
    header.set_qform(np.eye(4), code=1)
    raw = header.binaryblock + b"\0\0\0\0" + bytes(100)
    path.write_bytes(gzip.compress(raw, mtime=0))
    return path


#: Runs ``twinsep ingest`` and prints the peak resident memory of this process (VmHWM,
#: which exec resets, unlike ru_maxrss: that keeps the forking parent's size).
_CHILD = """
import sys
from twinsep.cli import main
try:
    code = main(["-q", "ingest", *sys.argv[1:]])
finally:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) * 1024)
sys.exit(code)
"""


def _peak_rss_of(args: list[str]) -> tuple[int, int, float, str]:
    """Run ``twinsep ingest ARGS`` in a fresh interpreter; its exit code, its peak resident
    memory (bytes), seconds and stderr."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True,
                          text=True, timeout=120)
    return (proc.returncode, int(proc.stdout.split()[-1]), time.monotonic() - start,
            proc.stderr)


@pytest.mark.parametrize("make", [_bomb_nrrd, _bomb_mha, _bomb_nii_gz],
                         ids=["nrrd", "mha", "nii.gz"])
def test_small_gzip_claiming_1000_cubed_is_refused_fast_in_bounded_memory(tmp_path, make):
    bomb = make(tmp_path / {"_bomb_nrrd": "bomb.nrrd", "_bomb_mha": "bomb.mha"}.get(
        make.__name__, "bomb.nii.gz"))
    if make is _bomb_nrrd:
        assert len(bomb.read_bytes()) < 240
    out = tmp_path / "case"
    code, rss, seconds, err = _peak_rss_of([str(bomb), "--out", str(out)])
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "truncated" in lines[0] and bomb.name in lines[0], err
    # before the check, reading it took 2.1 GB (the 1.86 GiB buffer); now the interpreter
    # and its libraries only (about 180 MB)
    assert rss < 600e6, rss
    assert seconds < 30
    assert not out.exists()


# --- truncated data -------------------------------------------------------------------
def _volume() -> sitk.Image:
    rng = np.random.default_rng(5)
    image = sitk.GetImageFromArray(rng.integers(-1024, 3000, (8, 9, 10)).astype(np.int16))
    image.SetSpacing((0.8, 0.9, 1.5))
    return image


def _header_end(data: bytes, name: str) -> int:
    if name.endswith(".nrrd"):
        return data.index(b"\n\n") + 2
    marker = b"ElementDataFile = LOCAL\n"
    return data.index(marker) + len(marker)


#: name, compressed, the file cut (the data file for detached headers)
_LAYOUTS = [
    ("raw.nrrd", False), ("gzip.nrrd", True), ("raw.nhdr", False), ("gzip.nhdr", True),
    ("raw.mha", False), ("zlib.mha", True), ("raw.mhd", False), ("zlib.mhd", True),
]


def _data_file(header: Path) -> Path:
    """The detached data file a .nhdr/.mhd header names."""
    for line in header.read_text("latin-1").splitlines():
        key, _, value = line.replace(":", "=", 1).partition("=")
        if key.strip().lower().replace(" ", "") in ("datafile", "elementdatafile"):
            return header.parent / value.strip()
    raise AssertionError(f"no data file in {header}")


@pytest.mark.parametrize("name,compressed", _LAYOUTS)
def test_truncated_data_refused_in_one_line_nothing_written(tmp_path, capfd, name,
                                                            compressed):
    src = tmp_path / "in" / name
    src.parent.mkdir()
    sitk.WriteImage(_volume(), str(src), compressed)
    assert main(["ingest", str(src), "--out", str(tmp_path / "whole")]) == 0  # the control
    capfd.readouterr()
    if src.suffix in (".nhdr", ".mhd"):
        data_file = _data_file(src)
        data = data_file.read_bytes()
        data_file.write_bytes(data[: len(data) // 2])
    else:
        data = src.read_bytes()
        start = _header_end(data, name)
        src.write_bytes(data[: start + (len(data) - start) // 2])
    out = tmp_path / "case"
    assert main(["ingest", str(src), "--out", str(out)]) == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "truncated" in lines[0] and name in lines[0], lines
    assert not out.exists()


def test_truncated_raw_nrrd_names_the_byte_counts(tmp_path):
    src = tmp_path / "a.nrrd"
    sitk.WriteImage(_volume(), str(src), False)
    data = src.read_bytes()
    src.write_bytes(data[:-100])
    with pytest.raises(InputError, match=r"truncated .* 1340 of the 1440 bytes"):
        ingest(src, tmp_path / "case")
    assert not (tmp_path / "case").exists()


# --- the memory limit -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["a.nii.gz", "a.nii", "a.nrrd", "a.nhdr", "a.mha", "a.mhd"])
def test_memory_limit_refuses_a_normal_file_before_reading(tmp_path, name):
    src = tmp_path / name
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((60, 100, 100), np.int16)), str(src),
                    True)  # 1.2 MB of voxels, over 0.001 GiB (1.07 MB)
    out = tmp_path / "case"
    (out).mkdir()  # an empty --out stays empty
    with pytest.raises(InputError, match=r"100x100x60 voxels .*ingest\.memory_limit_gb"):
        ingest(src, out, memory_limit_gb=0.001)
    assert list(out.iterdir()) == []
    assert ingest(src, tmp_path / "ok", memory_limit_gb=0.002).volume.shape == (60, 100, 100)


# --- impossible headers ---------------------------------------------------------------
#: what, the header line replaced (by its start), the new line, what the error says
_NRRD_EDITS = {
    "zero size": (b"sizes:", b"sizes: 10 0 8", "a size of 0"),
    "negative size": (b"sizes:", b"sizes: 10 -9 8", "a size of -9"),
    "zero spacing": (b"space directions:", b"space directions: (0,0,0) (0,0.9,0) (0,0,1.5)",
                     "spacing of 0"),
    "NaN direction": (b"space directions:",
                      b"space directions: (nan,0,0) (0,0.9,0) (0,0,1.5)", "non-finite"),
    "NaN spacings": (b"space directions:", b"spacings: 0.8 nan 1.5",
                     "spacing of 0.8 nan 1.5"),
    "negative spacings": (b"space directions:", b"spacings: 0.8 -1 1.5",
                          "spacing of 0.8 -1 1.5"),
    "infinite origin": (b"space origin:", b"space origin: (inf,0,0)", "non-finite origin"),
}
_MHA_EDITS = {
    "zero size": (b"DimSize =", b"DimSize = 10 9 0", "a size of 0"),
    "negative size": (b"DimSize =", b"DimSize = -10 9 8", "a size of -10"),
    "zero spacing": (b"ElementSpacing =", b"ElementSpacing = 0 0.9 1.5", "spacing of 0 0.9"),
    "NaN spacing": (b"ElementSpacing =", b"ElementSpacing = nan 0.9 1.5", "spacing of nan"),
    "negative spacing": (b"ElementSpacing =", b"ElementSpacing = -0.8 0.9 1.5",
                         "spacing of -0.8"),
    "NaN origin": (b"Offset =", b"Offset = nan 0 0", "non-finite origin"),
    "infinite direction": (b"TransformMatrix =", b"TransformMatrix = -inf 0 0 0 1 0 0 0 1",
                           "non-finite direction"),
}


def _edit_cases() -> list[tuple[str, str, bytes, bytes, str]]:
    cases = [(f"nrrd {k}", "a.nrrd", *v) for k, v in _NRRD_EDITS.items()]
    return cases + [(f"mha {k}", "a.mha", *v) for k, v in _MHA_EDITS.items()]


@pytest.mark.parametrize("what,name,start,line,said", _edit_cases(),
                         ids=[c[0] for c in _edit_cases()])
def test_impossible_header_refused_in_one_line(tmp_path, capfd, what, name, start, line,
                                               said):
    src = tmp_path / name
    sitk.WriteImage(_volume(), str(src), False)
    lines = src.read_bytes().split(b"\n")
    hits = [n for n, old in enumerate(lines) if old.startswith(start)]
    assert len(hits) == 1, what
    lines[hits[0]] = line
    src.write_bytes(b"\n".join(lines))
    out = tmp_path / "case"
    assert main(["ingest", str(src), "--out", str(out)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0] and name in err[0], (what, err)
    assert not out.exists()


@pytest.mark.parametrize("field,offset,fmt,value,said", [
    ("dim[2]", 44, "<h", 0, "a size of 10x0x8"),
    ("dim[3]", 46, "<h", -8, "a size of 10x9x-8"),
    ("pixdim[1]", 80, "<f", 0.0, "spacing of 0 0.9 1.5"),
    ("pixdim[2]", 84, "<f", float("nan"), "spacing of 0.8 nan 1.5"),
    ("pixdim[3]", 88, "<f", -1.5, "spacing of 0.8 0.9 -1.5"),
])
def test_impossible_nifti_header_refused(tmp_path, capfd, field, offset, fmt, value, said):
    src = tmp_path / "a.nii"
    sitk.WriteImage(_volume(), str(src))
    data = bytearray(src.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    src.write_bytes(bytes(data))
    assert main(["ingest", str(src), "--out", str(tmp_path / "case")]) == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], (field, lines)
    assert not (tmp_path / "case").exists()


def test_memory_limit_set_on_the_command_line(tmp_path, capsys) -> None:
    """``twinsep ingest --set memory_limit_gb=...`` reaches the readers."""
    import numpy as np

    from twinsep.cli import main
    from twinsep.image import Volume

    src = tmp_path / "small.nii.gz"
    Volume(np.zeros((40, 40, 40), np.int16)).write(src)
    out = tmp_path / "case"
    assert main(["ingest", str(src), "--out", str(out), "--set", "memory_limit_gb=0.0001"]) == 2
    err = capsys.readouterr().err
    assert "ingest.memory_limit_gb" in err and not out.exists()
    assert main(["ingest", str(src), "--out", str(out), "--set", "memory_limit_gb=0.001"]) == 0
