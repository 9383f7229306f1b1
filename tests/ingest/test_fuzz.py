"""Fuzzing ``twinsep ingest`` (issue 14 item 4): small valid NIfTI, NRRD, MetaImage and DICOM
files with random header edits and truncations either ingest (exit 0, a valid case folder)
or are refused (exit 2, nothing written); never an exception, never a large allocation."""

from __future__ import annotations

import contextlib
import gzip
import inspect
import resource
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twinsep.cli import main
from twinsep.image import Volume

#: Memory limit of every fuzzed ingest, GiB: no example may allocate much.
LIMIT_GB = 0.05
#: Peak resident memory the whole fuzz run may add, bytes.
RSS_GROWTH_MAX = 300e6

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _limit_args() -> list[str]:
    """``--set memory_limit_gb=...`` where ``twinsep ingest`` takes it."""
    from twinsep.cli.ingest import ingest as command

    if "set_" in inspect.signature(command).parameters:
        return ["--set", f"memory_limit_gb={LIMIT_GB}"]
    return []


@contextlib.contextmanager
def _small_limit() -> Iterator[list[str]]:
    """The arguments (or, without ``--set`` on ``twinsep ingest``, a patch of the stage)
    that hold every ingest to ``LIMIT_GB``."""
    args = _limit_args()
    if args:
        yield args
        return
    import twinsep.ingest.case as stage

    real = stage.ingest

    def limited(*a, **k):
        k["memory_limit_gb"] = min(k.get("memory_limit_gb", LIMIT_GB), LIMIT_GB)
        return real(*a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stage, "ingest", limited)
        yield []


def _maxrss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0


def _check_ingest(scan: Path, args: list[str]) -> int:
    """Ingest ``scan``; exit 0 with a readable case, or 2 with nothing written."""
    out = scan.parent / "case"
    code = main(["-q", "ingest", str(scan), "--out", str(out), *args])
    assert code in (0, 2), code
    assert _maxrss() - _BASE_RSS[0] < RSS_GROWTH_MAX, "an ingest used too much memory"
    if code == 0:
        vol = Volume.read(out / "scan.nii.gz")
        assert vol.array.ndim == 3 and min(vol.shape) >= 1
        assert (out / "case.json").is_file()
    else:
        assert not out.exists() or list(out.iterdir()) == []
        assert [p.name for p in scan.parent.iterdir() if p.name.startswith(".")] == []
    return code


@contextlib.contextmanager
def _folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="twinsep-fuzz-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _image() -> sitk.Image:
    rng = np.random.default_rng(1)
    image = sitk.GetImageFromArray(rng.integers(-1000, 2000, (5, 6, 7)).astype(np.int16))
    image.SetSpacing((0.7, 0.8, 1.2))
    image.SetOrigin((1.0, -2.0, 3.0))
    return image


def _seed(name: str, compressed: bool) -> bytes:
    with _folder() as d:
        sitk.WriteImage(_image(), str(d / name), compressed)
        return (d / name).read_bytes()


def _cut(data: bytes, keep: float | None) -> bytes:
    return data if keep is None else data[: int(len(data) * keep)]


_KEEP = st.none() | st.floats(0.0, 1.0)
_NUMBER = st.sampled_from(["0", "-1", "1", "2", "nan", "inf", "-inf", "1e308", "4294967296",
                           "2147483648", "1000", "0.5", "x", ""]) | st.integers(
    -(2**40), 2**40).map(str) | st.floats(allow_nan=True).map(repr)
_VALUES = st.lists(_NUMBER, min_size=0, max_size=5).map(" ".join)


# --- NRRD and MetaImage text headers --------------------------------------------------
_NRRD_KEYS = {
    "sizes": _VALUES,
    "dimension": _NUMBER,
    "type": st.sampled_from(["short", "uchar", "int", "double", "float", "block", "long long",
                             "complex", "", "short short"]),
    "encoding": st.sampled_from(["raw", "gzip", "gz", "bzip2", "ascii", "hex", "zip", ""]),
    "endian": st.sampled_from(["little", "big", "middle", ""]),
    "space directions": st.lists(
        st.tuples(_NUMBER, _NUMBER, _NUMBER).map(lambda v: f"({','.join(v)})")
        | st.just("none"), max_size=4).map(" ".join),
    "spacings": _VALUES,
    "space origin": st.tuples(_NUMBER, _NUMBER, _NUMBER).map(lambda v: f"({','.join(v)})"),
    "byte skip": _NUMBER,
    "line skip": _NUMBER,
}
_MHA_KEYS = {
    "DimSize": _VALUES,
    "NDims": _NUMBER,
    "ElementType": st.sampled_from(["MET_SHORT", "MET_UCHAR", "MET_DOUBLE", "MET_LONG",
                                    "MET_FLOAT", "MET_OTHER", "", "MET_SHORT_ARRAY"]),
    "ElementNumberOfChannels": _NUMBER,
    "CompressedData": st.sampled_from(["True", "False", "1", ""]),
    "CompressedDataSize": _NUMBER,
    "BinaryData": st.sampled_from(["True", "False"]),
    "ElementSpacing": _VALUES,
    "Offset": _VALUES,
    "TransformMatrix": _VALUES,
    "HeaderSize": _NUMBER,
}


def _edit_text_header(data: bytes, edits: list[tuple[str, str]], sep: str,
                      nrrd: bool) -> bytes:
    """Set header ``key sep value`` lines (replacing the line, or adding one)."""
    if nrrd:
        end = data.index(b"\n\n") + 1
    else:
        marker = b"ElementDataFile"
        end = data.index(marker)
    head, body = data[:end].decode("latin-1").splitlines(), data[end:]
    for key, value in edits:
        line = f"{key}{sep}{value}"
        hits = [n for n, h in enumerate(head) if h.split(sep.strip() or " ", 1)[0].strip()
                == key]
        if hits:
            head[hits[0]] = line
        else:
            head.append(line)
    return ("\n".join(head) + "\n").encode("latin-1") + body


@given(compressed=st.booleans(),
       edits=st.lists(st.sampled_from(sorted(_NRRD_KEYS)).flatmap(
           lambda k: st.tuples(st.just(k), _NRRD_KEYS[k])), max_size=3),
       keep=_KEEP)
@FUZZ
def test_fuzz_nrrd(compressed, edits, keep):
    data = _cut(_edit_text_header(_SEEDS[("nrrd", compressed)], edits, ": ", True), keep)
    with _folder() as d, _small_limit() as args:
        (d / "a.nrrd").write_bytes(data)
        _check_ingest(d / "a.nrrd", args)


@given(compressed=st.booleans(),
       edits=st.lists(st.sampled_from(sorted(_MHA_KEYS)).flatmap(
           lambda k: st.tuples(st.just(k), _MHA_KEYS[k])), max_size=3),
       keep=_KEEP)
@FUZZ
def test_fuzz_mha(compressed, edits, keep):
    data = _cut(_edit_text_header(_SEEDS[("mha", compressed)], edits, " = ", False), keep)
    with _folder() as d, _small_limit() as args:
        (d / "a.mha").write_bytes(data)
        _check_ingest(d / "a.mha", args)


# --- NIfTI: random bytes in the 348-byte header ---------------------------------------
#: Header fields worth hitting more often than random bytes would: offset and format.
_NIFTI_FIELDS = [(0, "<i"), (40, "<h"), (42, "<h"), (44, "<h"), (46, "<h"), (48, "<h"),
                 (70, "<h"), (72, "<h"), (76, "<f"), (80, "<f"), (84, "<f"), (88, "<f"),
                 (108, "<f"), (112, "<f"), (252, "<h"), (254, "<h"), (268, "<f"),
                 (280, "<f"), (284, "<f")]


@st.composite
def _nifti_edits(draw) -> list[tuple[int, bytes]]:
    import struct

    edits = [(n, bytes([b])) for n, b in draw(st.lists(
        st.tuples(st.integers(0, 347), st.integers(0, 255)), max_size=6))]
    for offset, fmt in draw(st.lists(st.sampled_from(_NIFTI_FIELDS), max_size=3)):
        if fmt == "<f":
            value = draw(st.floats(width=32) | st.sampled_from([0.0, -1.0, 1e30]))
        elif fmt == "<h":
            value = draw(st.integers(-(2**15), 2**15 - 1) | st.sampled_from([0, 1, 3, 4, 7]))
        else:
            value = draw(st.integers(-(2**31), 2**31 - 1))
        edits.append((offset, struct.pack(fmt, value)))
    return edits


@given(gz=st.booleans(), edits=_nifti_edits(), keep=_KEEP)
@FUZZ
def test_fuzz_nifti(gz, edits, keep):
    raw = bytearray(_SEEDS[("nii", False)])
    for offset, value in edits:
        raw[offset:offset + len(value)] = value
    name = "a.nii.gz" if gz else "a.nii"
    data = _cut(gzip.compress(bytes(raw), mtime=0) if gz else bytes(raw), keep)
    with _folder() as d, _small_limit() as args:
        (d / name).write_bytes(data)
        _check_ingest(d / name, args)


# --- DICOM: random tag values (pydicom) -----------------------------------------------
_DICOM_EDITS = {
    "Rows": st.integers(0, 70000),
    "Columns": st.integers(0, 70000),
    "NumberOfFrames": st.integers(-5, 100000).map(str),
    "BitsAllocated": st.sampled_from([0, 1, 7, 8, 12, 16, 32, 64, 65535]),
    "PixelSpacing": st.lists(st.sampled_from(["0", "-1", "0.5", "nan", "inf", "1e300"]),
                             min_size=0, max_size=3),
    "ImagePositionPatient": st.lists(st.sampled_from(["0", "1", "nan", "-inf", "1e308"]),
                                     min_size=0, max_size=4),
    # written over Explicit VR Little Endian's 20 bytes (the meta group's length stays
    # right; a longer UID is cut, an invalid one): big endian, RLE, JPEG..., unknown
    "TransferSyntax": st.sampled_from(["1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5",
                                       "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.90",
                                       "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.1.99",
                                       "1.2.3.4.5.6.7.8.9.10"]),
}


@given(which=st.integers(0, 2), all_files=st.booleans(),
       edits=st.lists(st.sampled_from(sorted(_DICOM_EDITS)).flatmap(
           lambda k: st.tuples(st.just(k), _DICOM_EDITS[k])), max_size=3),
       keep=_KEEP)
@FUZZ
def test_fuzz_dicom(which, all_files, edits, keep):
    import pydicom

    with _folder() as d, _small_limit() as args:
        series = d / "dcm"
        shutil.copytree(_SEEDS_DIR / "dcm", series)
        files = sorted(series.iterdir())
        for f in files if all_files else [files[which]]:
            ds = pydicom.dcmread(f)
            syntax = None
            for key, value in edits:
                if key == "TransferSyntax":
                    syntax = value
                else:
                    setattr(ds, key, value)
            ds.save_as(f, enforce_file_format=False)
            if syntax is not None:  # the file meta lies about the encoding (same length)
                old = b"1.2.840.10008.1.2.1\x00"
                new = syntax.encode().ljust(len(old), b"\x00")
                assert old in f.read_bytes()
                f.write_bytes(f.read_bytes().replace(old, new[: len(old)], 1))
        target = files[which]
        target.write_bytes(_cut(target.read_bytes(), keep))
        _check_ingest(series, args)


# --- seeds and the memory bound -------------------------------------------------------
_SEEDS_DIR = Path(tempfile.mkdtemp(prefix="twinsep-fuzz-seeds-"))
_SEEDS: dict[tuple[str, bool], bytes] = {}
_BASE_RSS = [0.0]


@pytest.fixture(scope="module", autouse=True)
def _seeds():
    from twinsep.exchange.dicom import write_ct_series

    for fmt, ext in (("nrrd", "a.nrrd"), ("mha", "a.mha"), ("nii", "a.nii")):
        for compressed in (False, True):
            _SEEDS[(fmt, compressed)] = _seed(ext, compressed)
    write_ct_series(Volume.from_sitk(_image()), _SEEDS_DIR / "dcm")
    for seed in ("nrrd", "mha", "nii"):  # every seed is valid to begin with
        with _folder() as d:
            (d / f"a.{seed}").write_bytes(_SEEDS[(seed, False)])
            assert main(["-q", "ingest", str(d / f"a.{seed}"), "--out", str(d / "c")]) == 0
    _BASE_RSS[0] = _maxrss()
    yield
    shutil.rmtree(_SEEDS_DIR, ignore_errors=True)
