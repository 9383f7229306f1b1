"""NIfTI, NRRD and MetaImage readers (SimpleITK, with nibabel's completeness check)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.ingest._shared import Loaded, check_3d, itk_error, quiet_stderr, suffix


# --------------------------------------------------------------------------------------
def _data_files(path: Path, fmt: str) -> list[Path]:
    """The header file plus any detached data file (.mhd/.nhdr)."""
    files = [path]
    if suffix(path) not in (".mhd", ".nhdr"):
        return files
    try:
        text = path.read_bytes()[:65536].decode("latin-1")
    except OSError:
        return files
    for line in text.splitlines():
        key, _, value = line.partition("=" if fmt == "metaimage" else ":")
        key = key.strip().lower().replace(" ", "")
        value = value.strip()
        if key in ("elementdatafile", "datafile") and value and value.upper() != "LOCAL":
            candidate = path.parent / value
            if candidate.is_file():
                files.append(candidate)
    return files


def _check_nifti_complete(path: Path) -> None:
    """ITK reads a truncated NIfTI file without complaint (zero-filled): check it here."""
    import gzip
    import zlib

    import nibabel as nib

    try:
        header = nib.load(path).header
        expected = int(header.get_data_offset()) + int(
            np.prod(header.get_data_shape(), dtype=np.int64)
        ) * header.get_data_dtype().itemsize
    except Exception as exc:  # nibabel raises many types for a broken header
        raise InputError(f"{path}: not a readable NIfTI file ({type(exc).__name__})") from None
    if suffix(path) == ".nii.gz":
        size = 0
        try:
            with gzip.open(path, "rb") as fh:
                while block := fh.read(1 << 22):
                    size += len(block)
        except (EOFError, OSError, zlib.error):
            raise InputError(f"{path}: truncated or corrupt gzip data (the file ends "
                             f"after {size} of {expected} bytes)") from None
    else:
        size = path.stat().st_size
    if size < expected:
        raise InputError(f"{path}: truncated (holds {size} of the {expected} bytes its "
                         "header announces)")


def read_itk(path: Path, fmt: str, *, limit_gb: float) -> Loaded:
    """Read a NIfTI, NRRD or MetaImage file whose voxel data fit in ``limit_gb`` GiB."""
    import SimpleITK as sitk

    if fmt == "nifti":
        _check_nifti_complete(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with quiet_stderr():
            reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(f"{path}: not a readable {fmt} image ({itk_error(exc)})") from None
    size = reader.GetSize()
    if len(size) == 4 and size[3] == 1:
        size = size[:3]
    check_3d(size, path)
    if len(size) > 3 or reader.GetDimension() > 4:
        raise InputError(f"{path}: a {reader.GetDimension()}-D image; a 3-D scan is needed")
    if reader.GetNumberOfComponents() != 1:
        raise InputError(f"{path}: a multi-component (colour/vector) image; a scalar scan "
                         "is needed")
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
    files = _data_files(path, fmt)
    return Loaded(
        volume=volume,
        source={"format": fmt, "file_count": len(files)},
        files=files,
        phi={"source_path": str(path.absolute())},
    )
