"""NIfTI, NRRD and MetaImage readers (SimpleITK), with the header checked before reading.

Before SimpleITK allocates the voxels, :func:`read_itk` checks what the header declares:
positive sizes, positive finite spacing, finite origin and direction, voxel data within the
memory limit (:func:`~twinsep.ingest._shared.check_allocation`), and that the file (or its
detached data files) really holds that many bytes. Compressed data (gzip NRRD, compressed
MetaImage, ``.nii.gz``) are inflated block by block for that count, never whole in memory.
"""

from __future__ import annotations

import bz2
import logging
import math
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.ingest._shared import (
    Loaded,
    check_3d,
    check_allocation,
    itk_error,
    non_finite,
    quiet_stderr,
    refuse_non_finite,
    suffix,
)

#: Largest text header read (NRRD/MetaImage headers are a few hundred bytes).
_HEADER_MAX = 1 << 20
#: Block sizes when inflating or scanning data, bytes.
_IN_BLOCK = 1 << 20
_OUT_BLOCK = 1 << 22
#: Most data files one detached header may name (LIST or a file-name pattern).
_MAX_FILES = 100_000

#: Bytes per voxel of the scalar SimpleITK pixel types (by pixel ID value).
_ITEMSIZE = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 8, 7: 8, 8: 4, 9: 8}


@dataclass
class _Layout:
    """Where a header says its voxel data lie.

    Attributes
    ----------
    encoding : str
        ``raw``, ``gzip`` (gzip or zlib stream), ``bzip2``, ``ascii``, ``hex`` or ``""``
        (unknown: the data are not checked here).
    files : list of (Path, int)
        Each data file and the byte offset where its data start; -1: the data are the
        last bytes of the file (NRRD ``byte skip: -1``, MetaImage ``HeaderSize = -1``).
    line_skip : int
        Lines skipped at the start of each data file before the data (NRRD).
    byte_skip : int
        Bytes skipped after decoding, before the voxels (NRRD, compressed encodings).
    """

    encoding: str = ""
    files: list[tuple[Path, int]] = field(default_factory=list)
    line_skip: int = 0
    byte_skip: int = 0


# --- text headers ---------------------------------------------------------------------
def _header_lines(path: Path, *, nrrd: bool) -> Iterator[tuple[str, int]]:
    """The lines of a text header and the byte offset just after each; a NRRD header ends
    at its first empty line (attached data follow it)."""
    try:
        with path.open("rb") as fh:
            data = fh.read(_HEADER_MAX)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        line = data[pos:end].rstrip(b"\r\n").decode("latin-1")
        pos = end
        if nrrd and not line.strip():
            yield "", pos
            return
        yield line, pos


def _ints(value: str, key: str, path: Path) -> list[int]:
    words = value.split()
    try:
        sizes = [int(w) for w in words]
    except ValueError:
        raise InputError(f"{path}: its header's {key} ({value.strip()[:60]!r}) are not "
                         "whole numbers") from None
    bad = [n for n in sizes if n <= 0]
    if not sizes or bad:
        raise InputError(f"{path}: its header declares a size of "
                         f"{bad[0] if bad else 'nothing'} ({key} {value.strip()[:60]!r}); "
                         "every size must be a positive whole number of voxels")
    return sizes


def _floats(value: str, key: str, path: Path) -> list[float]:
    words = [w for w in re.split(r"[\s,()]+", value) if w]
    try:
        return [float(w) for w in words]
    except ValueError:
        raise InputError(f"{path}: its header's {key} ({value.strip()[:60]!r}) are not "
                         "numbers") from None


def _check_ndims(value: str, key: str, path: Path) -> None:
    """Refuse a dimension count other than 1-4 before ITK sees it (MetaIO crashes on a
    negative or large NDims)."""
    try:
        n = int(value)
    except ValueError:
        raise InputError(f"{path}: its header's {key} ({value.strip()[:40]!r}) is not a "
                         "whole number") from None
    if not 1 <= n <= 4:
        raise InputError(f"{path}: a {n}-D image ({key} {n}); a 3-D scan is needed")


def _check_spacing(values: list[float], key: str, path: Path) -> None:
    if any(not math.isfinite(v) or v <= 0 for v in values):
        raise InputError(f"{path}: its header declares a voxel spacing of "
                         f"{' '.join(f'{v:g}' for v in values)} ({key}); spacing must be "
                         "positive and finite, mm")


def _check_finite(values: list[float], key: str, what: str, path: Path) -> None:
    if any(not math.isfinite(v) for v in values):
        raise InputError(f"{path}: its header declares a non-finite {what} ({key} "
                         f"{' '.join(f'{v:g}' for v in values)})")


def _file_list(spec: str, rest: list[str], base: Path, path: Path) -> list[Path]:
    """Data files named by ``spec``: one file, ``LIST`` (the names in ``rest``) or a
    printf pattern ``name%03d.raw first last step``."""
    words = spec.split()
    if words and words[0].upper() == "LIST":
        names = [r.strip() for r in rest if r.strip()]
    elif len(words) >= 4 and "%" in words[0]:
        try:
            first, last, step = int(words[1]), int(words[2]), int(words[3])
            if step == 0 or (last - first) // step + 1 > _MAX_FILES:
                raise ValueError
            names = [words[0] % n for n in range(first, last + (1 if step > 0 else -1), step)]
        except (ValueError, TypeError, OverflowError):
            raise InputError(f"{path}: its header names its data files by a pattern twinsep "
                             f"cannot expand ({spec.strip()[:60]!r})") from None
    else:
        names = [spec.strip()]
    if not names or len(names) > _MAX_FILES:
        raise InputError(f"{path}: its header names {len(names)} data files")
    files = [base / n for n in names]
    for f in files:
        if not f.is_file():
            raise InputError(f"{path}: its data file {f.name} is missing")
    return files


def _nrrd_layout(path: Path) -> _Layout:
    """Check a NRRD header's sizes and geometry and say where its data lie."""
    lines = list(_header_lines(path, nrrd=True))
    if not lines or not lines[0][0].startswith("NRRD"):
        raise InputError(f"{path}: not a NRRD file (no NRRD magic line)")
    fields: dict[str, str] = {}
    end = lines[-1][1]
    attached = lines[-1][0] == "" and len(lines) > 1
    rest: list[str] = []
    for n, (line, _) in enumerate(lines[1:], start=1):
        if line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or value.startswith("="):  # key/value pairs (key:=value) are free text
            continue
        key = key.strip().lower().replace(" ", "")
        fields[key] = value.strip()
        if key == "datafile" and value.split()[:1] and value.split()[0].upper() == "LIST":
            rest = [ln for ln, _ in lines[n + 1:]]
            break
    if "dimension" in fields:
        _check_ndims(fields["dimension"], "dimension", path)
    if "sizes" in fields:
        _ints(fields["sizes"], "sizes", path)
    if "spacings" in fields:
        _check_spacing(_floats(fields["spacings"], "spacings", path)[:3], "spacings", path)
    if "spaceorigin" in fields:
        _check_finite(_floats(fields["spaceorigin"], "space origin", path), "space origin",
                      "origin", path)
    if "spacedirections" in fields:
        vectors = [v for v in fields["spacedirections"].split() if v.lower() != "none"]
        for vector in vectors:
            xyz = _floats(vector, "space directions", path)
            _check_finite(xyz, "space directions", "direction", path)
            if not any(xyz):
                raise InputError(f"{path}: its header declares a voxel spacing of 0 (a zero "
                                 "vector in space directions); spacing must be positive")
    encoding = fields.get("encoding", "").lower()
    encoding = {"gz": "gzip", "bz2": "bzip2", "txt": "ascii", "text": "ascii"}.get(
        encoding, encoding)
    if encoding not in ("raw", "gzip", "bzip2", "ascii", "hex"):
        encoding = ""
    try:
        line_skip = max(int(fields.get("lineskip", "0")), 0)
        byte_skip = int(fields.get("byteskip", "0"))
    except ValueError:
        raise InputError(f"{path}: its header's line/byte skip are not whole numbers") from None
    spec = fields.get("datafile")
    if spec:
        files = _file_list(spec, rest, path.parent, path)
        starts = [-1 if (byte_skip < 0 and encoding == "raw") else 0 for _ in files]
    elif attached:
        files, starts = [path], [end]
    else:
        raise InputError(f"{path}: its NRRD header has no data (no empty line after it and "
                         "no data file)")
    layout = _Layout(encoding, list(zip(files, starts, strict=True)), line_skip,
                     max(byte_skip, 0))
    if encoding == "raw" and byte_skip > 0:  # raw: byte skip is within the file
        layout.files = [(f, s + byte_skip if s >= 0 else s) for f, s in layout.files]
        layout.byte_skip = 0
    return layout


def _meta_layout(path: Path) -> _Layout:
    """Check a MetaImage header's sizes and geometry and say where its data lie."""
    fields: dict[str, str] = {}
    spec, end, rest = None, 0, []
    lines = list(_header_lines(path, nrrd=False))
    for n, (line, after) in enumerate(lines):
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key = key.strip().lower()
        fields[key] = value.strip()
        if key == "elementdatafile":
            spec, end = value.strip(), after
            rest = [ln for ln, _ in lines[n + 1:]]
            break
    if "ndims" in fields:
        _check_ndims(fields["ndims"], "NDims", path)
    if "dimsize" in fields:
        _ints(fields["dimsize"], "DimSize", path)
    for key in ("elementspacing", "elementsize"):
        if key in fields:
            _check_spacing(_floats(fields[key], key, path), key, path)
    for key in ("offset", "origin", "position"):
        if key in fields:
            _check_finite(_floats(fields[key], key, path), key, "origin", path)
    for key in ("transformmatrix", "rotation", "orientation"):
        if key in fields:
            _check_finite(_floats(fields[key], key, path), key, "direction", path)
    if spec is None:
        raise InputError(f"{path}: its MetaImage header has no ElementDataFile")
    compressed = fields.get("compresseddata", "false").lower() in ("true", "1")
    binary = fields.get("binarydata", "true").lower() in ("true", "1")
    encoding = ("gzip" if compressed else "raw") if binary else ("" if compressed else
                                                                  "ascii")
    try:
        header_size = int(fields.get("headersize", "0"))
    except ValueError:
        raise InputError(f"{path}: its header's HeaderSize is not a whole number") from None
    if spec.upper() == "LOCAL":
        return _Layout(encoding, [(path, end)])
    files = _file_list(spec, rest, path.parent, path)
    start = -1 if header_size < 0 and encoding == "raw" else max(header_size, 0)
    return _Layout(encoding, [(f, start) for f in files])


# --- how many bytes the data hold -----------------------------------------------------
def _skip_lines(fh: BinaryIO, count: int) -> None:
    """Move ``fh`` past ``count`` newlines, reading in blocks."""
    while count > 0:
        block = fh.read(_IN_BLOCK)
        if not block:
            return
        start = 0
        while count > 0:
            nl = block.find(b"\n", start)
            if nl < 0:
                break
            count -= 1
            start = nl + 1
        if count == 0:
            fh.seek(start - len(block), 1)


def _inflated(fh: BinaryIO, need: int, encoding: str) -> tuple[int, str | None]:
    """Decompress the stream from ``fh`` in blocks until ``need`` bytes came out or it
    ends; returns the count (bytes) and the decompressor's complaint, if any. Memory stays
    within a few blocks whatever the compression ratio."""

    def fresh():
        return bz2.BZ2Decompressor() if encoding == "bzip2" else zlib.decompressobj(47)

    total = 0
    dec = fresh()
    pending = b""
    try:
        while total < need:
            tail = getattr(dec, "unconsumed_tail", b"")
            if tail:
                chunk, pending = tail, b""
            elif pending:
                chunk, pending = pending, b""
            else:
                chunk = fh.read(_IN_BLOCK)
                if not chunk:
                    if encoding != "bzip2" and not dec.eof:
                        total += len(dec.flush())
                    break
            if encoding == "bzip2":
                total += len(dec.decompress(chunk, max_length=_OUT_BLOCK))
                if dec.needs_input is False and not dec.eof:
                    while total < need and not dec.eof and not dec.needs_input:
                        total += len(dec.decompress(b"", max_length=_OUT_BLOCK))
            else:
                total += len(dec.decompress(chunk, _OUT_BLOCK))
            if dec.eof:  # the end of one member: another may follow (concatenated gzip)
                left = dec.unused_data or fh.read(_IN_BLOCK)
                if not left.startswith((b"\x1f\x8b", b"BZh")):
                    break
                dec, pending = fresh(), left
    except (zlib.error, OSError, EOFError, ValueError) as exc:
        return total, " ".join(str(exc).split())[:80]
    return total, None


def _check_data(path: Path, layout: _Layout, expected: int, n_voxels: int) -> None:
    """Refuse data shorter than the ``expected`` bytes the header declares."""
    if not layout.encoding or not layout.files:
        return
    if layout.encoding == "ascii":
        need = 2 * n_voxels - 1  # at least one digit and one separator per voxel
    elif layout.encoding == "hex":
        need = 2 * expected
    else:
        need = expected + layout.byte_skip
    kind = {"gzip": "compressed", "bzip2": "bzip2"}.get(layout.encoding, "")
    total = 0
    complaint = None
    for file, start in layout.files:
        try:
            size = file.stat().st_size
            if kind:
                with file.open("rb") as fh:
                    fh.seek(max(start, 0))
                    _skip_lines(fh, layout.line_skip)
                    got, complaint = _inflated(fh, need - total, layout.encoding)
                total += got
            elif start < 0:
                total += size
            else:
                skipped = 0
                if layout.line_skip:
                    with file.open("rb") as fh:
                        fh.seek(start)
                        _skip_lines(fh, layout.line_skip)
                        skipped = fh.tell() - start
                total += max(size - start - skipped, 0)
        except OSError as exc:
            raise InputError(f"{path}: its data file {file.name} cannot be read "
                             f"({exc.strerror or exc})") from None
        if complaint or total >= need:
            break
    if total < need:
        where = "its compressed data end" if kind else "its data hold"
        why = f"; {complaint}" if complaint else ""
        raise InputError(f"{path}: truncated or corrupt ({where} after {total} of the "
                         f"{need} bytes its header declares{why})")


def _nifti_expected(path: Path) -> int:
    """The bytes (header and voxels) a NIfTI file's header announces (nibabel)."""
    import nibabel as nib
    from nibabel.imageglobals import logger as nib_logger
    from nibabel.openers import ImageOpener

    level = nib_logger.level
    nib_logger.setLevel(logging.CRITICAL + 1)  # nibabel "fixes" a zero pixdim and says so
    try:
        try:
            header = nib.load(path).header
            with ImageOpener(path) as fh:
                raw = type(header).from_fileobj(fh, check=False)
        finally:
            nib_logger.setLevel(level)
        shape = header.get_data_shape()
        if any(int(n) <= 0 for n in shape):
            raise InputError(f"{path}: its header declares a size of "
                             f"{'x'.join(str(int(n)) for n in shape)} voxels; every size "
                             "must be a positive whole number")
        pixdim = [float(v) for v in raw["pixdim"][1:1 + min(len(shape), 3)]]
        _check_spacing(pixdim, "pixdim", path)
        return int(header.get_data_offset()) + int(
            np.prod(shape, dtype=np.int64)) * header.get_data_dtype().itemsize
    except InputError:
        raise
    except Exception as exc:  # nibabel raises many types for a broken header
        raise InputError(f"{path}: not a readable NIfTI file ({type(exc).__name__})") from None


def _check_nifti_finite(path: Path) -> None:
    """ITK's NIfTI reader turns NaN and infinite voxels into 0 without a word: count them
    here first (nibabel, a slab of slices at a time: bounded memory)."""
    import nibabel as nib

    img = nib.load(path)
    if img.get_data_dtype().kind not in "fc":
        return
    proxy = img.dataobj
    shape = tuple(int(n) for n in proxy.shape)
    bad = n_nan = 0
    if len(shape) < 3:
        bad, n_nan = non_finite(np.asarray(proxy))
    else:
        step = max(1, (1 << 22) // max(1, shape[0] * shape[1]))
        for k in range(0, shape[2], step):
            b, n = non_finite(np.asarray(proxy[:, :, k:k + step]))
            bad, n_nan = bad + b, n_nan + n
    refuse_non_finite(bad, n_nan, math.prod(shape), path)


def _check_nifti_complete(path: Path, expected: int | None = None) -> None:
    """ITK reads a truncated NIfTI file without complaint (zero-filled): check it here."""
    if expected is None:
        expected = _nifti_expected(path)
    if suffix(path) == ".nii.gz":
        with path.open("rb") as fh:
            size, complaint = _inflated(fh, expected, "gzip")
        if complaint:
            raise InputError(f"{path}: truncated or corrupt gzip data (the file ends "
                             f"after {size} of {expected} bytes; {complaint})")
        if size < expected:
            raise InputError(f"{path}: truncated or corrupt gzip data (the file ends "
                             f"after {size} of {expected} bytes)")
    else:
        size = path.stat().st_size
    if size < expected:
        raise InputError(f"{path}: truncated (holds {size} of the {expected} bytes its "
                         "header announces)")


# --------------------------------------------------------------------------------------
def _check_geometry(reader, path: Path) -> None:
    """Refuse spacing that is not positive and finite, and non-finite origin/direction."""
    spacing = [float(v) for v in reader.GetSpacing()][:3]
    _check_spacing(spacing, "spacing", path)
    _check_finite([float(v) for v in reader.GetOrigin()], "origin", "origin", path)
    _check_finite([float(v) for v in reader.GetDirection()], "direction", "direction", path)


def read_itk(path: Path, fmt: str, *, limit_gb: float) -> Loaded:
    """Read a NIfTI, NRRD or MetaImage file whose voxel data fit in ``limit_gb`` GiB.

    Parameters
    ----------
    path : Path
        The file (``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``).
    fmt : str
        ``nifti``, ``nrrd`` or ``metaimage``.
    limit_gb : float
        Largest voxel data allocated, GiB (as the header declares it).

    Returns
    -------
    Loaded

    Raises
    ------
    InputError
        A header declaring non-positive sizes or spacing, non-finite geometry, more voxel
        data than ``limit_gb``, more data than the file holds (truncated), or anything
        SimpleITK cannot read. Raised before the voxels are allocated where the header
        allows it.
    """
    import SimpleITK as sitk

    layout: _Layout | None = None
    nifti_bytes = None
    if fmt == "nifti":
        nifti_bytes = _nifti_expected(path)
    elif fmt == "nrrd":
        layout = _nrrd_layout(path)
    elif fmt == "metaimage":
        layout = _meta_layout(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with quiet_stderr():
            reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(f"{path}: not a readable {fmt} image ({itk_error(exc)})") from None
    size = tuple(int(n) for n in reader.GetSize())
    if any(n <= 0 for n in size):
        raise InputError(f"{path}: its header declares a size of "
                         f"{'x'.join(str(n) for n in size)} voxels; every size must be "
                         "positive")
    if len(size) == 4 and size[3] == 1:
        size = size[:3]
    check_3d(size, path)
    if len(size) > 3 or reader.GetDimension() > 4:
        raise InputError(f"{path}: a {reader.GetDimension()}-D image; a 3-D scan is needed")
    if reader.GetNumberOfComponents() != 1:
        raise InputError(f"{path}: a multi-component (colour/vector) image; a scalar scan "
                         "is needed")
    itemsize = _ITEMSIZE.get(int(reader.GetPixelID()))
    if itemsize is None:
        raise InputError(f"{path}: voxels of type {reader.GetPixelIDTypeAsString()}; a scan "
                         "of real scalar values is needed")
    _check_geometry(reader, path)
    check_allocation(size, itemsize, path, limit_gb)
    n_voxels = math.prod(size)
    if nifti_bytes is not None:
        _check_nifti_complete(path, nifti_bytes)
        _check_nifti_finite(path)
    elif layout is not None:
        _check_data(path, layout, n_voxels * itemsize, n_voxels)
    try:
        with quiet_stderr() as said:
            image = reader.Execute()
    except RuntimeError as exc:
        detail = " ".join("".join(said).split())[:120] or itk_error(exc)
        raise InputError(f"{path}: cannot read the voxels, the file may be truncated "
                         f"({detail})") from None
    if image.GetDimension() == 4:
        image = image[:, :, :, 0]
    try:
        volume = Volume.from_sitk(image)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    files = [path]
    if layout is not None:
        files += [f for f, _ in layout.files if f != path]
    return Loaded(
        volume=volume,
        source={"format": fmt, "file_count": len(files)},
        files=files,
        phi={"source_path": str(path.absolute())},
    )
