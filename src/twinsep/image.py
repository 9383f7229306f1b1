"""An image that carries its geometry with its array.

World coordinates are ITK's physical coordinates in millimetres (LPS: +x towards the
patient's left, +y posterior, +z superior), exactly as SimpleITK reads them from DICOM,
NIfTI, NRRD or MHA. Nothing here assumes axis-aligned or isotropic voxels.

Axis order: ``Volume.array`` is indexed ``[k, j, i]`` (slowest first), the order of
SimpleITK's numpy view, while ``origin``, ``spacing`` and the columns of ``direction``
follow ITK's ``(i, j, k)`` order. ``spacing_kji`` gives the spacing in array order,
for ``scipy.ndimage`` and ``skimage`` functions that take ``sampling=``/``spacing=``.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twinsep.errors import InputError

Vec3 = tuple[float, float, float]


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D array on a world grid.

    Parameters
    ----------
    array : ndarray, shape (nk, nj, ni)
        Voxel values, indexed ``[k, j, i]``.
    origin : (3,) float
        World position (mm) of the centre of voxel ``(i, j, k) = (0, 0, 0)``.
    spacing : (3,) float
        Voxel size (mm) along ``i, j, k``.
    direction : (9,) float
        Row-major 3x3 matrix whose columns are the world directions of ``i, j, k``.
    """

    array: np.ndarray
    origin: Vec3 = (0.0, 0.0, 0.0)
    spacing: Vec3 = (1.0, 1.0, 1.0)
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise InputError(f"expected a 3-D image, got {self.array.ndim}-D")
        object.__setattr__(self, "origin", tuple(float(v) for v in self.origin))
        object.__setattr__(self, "spacing", tuple(float(v) for v in self.spacing))
        object.__setattr__(self, "direction", tuple(float(v) for v in np.ravel(self.direction)))
        if len(self.direction) != 9:
            raise ValueError("direction must have 9 values")
        if min(self.spacing) <= 0:
            raise InputError(f"voxel spacing must be positive, got {self.spacing}")

    # --- geometry -----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(nk, nj, ni)``."""
        return self.array.shape  # type: ignore[return-value]

    @property
    def size_ijk(self) -> tuple[int, int, int]:
        """Grid size in ITK order ``(ni, nj, nk)``."""
        return tuple(int(n) for n in self.array.shape[::-1])  # type: ignore[return-value]

    @property
    def spacing_kji(self) -> tuple[float, float, float]:
        """Spacing (mm) in array axis order, for ``sampling=`` arguments."""
        return tuple(self.spacing[::-1])  # type: ignore[return-value]

    @property
    def direction_matrix(self) -> np.ndarray:
        """3x3 direction matrix (columns: world direction of i, j, k)."""
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous ``(i, j, k, 1)`` to world ``(x, y, z, 1)`` in mm."""
        m = np.eye(4)
        m[:3, :3] = self.direction_matrix * np.asarray(self.spacing)[None, :]
        m[:3, 3] = self.origin
        return m

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm^3."""
        return float(np.prod(self.spacing))

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in ml."""
        return self.voxel_volume_mm3 / 1000.0

    def index_to_world(self, kji: np.ndarray) -> np.ndarray:
        """World positions (mm) of array indices ``[..., (k, j, i)]`` (may be fractional)."""
        kji = np.asarray(kji, dtype=float)
        ijk = kji[..., ::-1]
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Fractional array indices ``[..., (k, j, i)]`` of world positions (mm)."""
        xyz = np.asarray(xyz, dtype=float)
        inv = np.linalg.inv(self.affine[:3, :3])
        ijk = (xyz - self.affine[:3, 3]) @ inv.T
        return ijk[..., ::-1]

    def same_grid(self, other: Volume, tol_mm: float = 1e-3) -> bool:
        """True when ``other`` has the same shape and geometry (to ``tol_mm``)."""
        return (
            self.shape == other.shape
            and np.allclose(self.origin, other.origin, atol=tol_mm)
            and np.allclose(self.spacing, other.spacing, atol=tol_mm)
            and np.allclose(self.direction, other.direction, atol=1e-6)
        )

    def with_array(self, array: np.ndarray) -> Volume:
        """A volume with the same geometry and a new array of the same shape."""
        if array.shape != self.array.shape:
            raise ValueError(f"shape {array.shape} differs from {self.array.shape}")
        return Volume(array, self.origin, self.spacing, self.direction)

    def geometry(self) -> dict:
        """Geometry as plain JSON-ready values (mm)."""
        return {
            "size_ijk": list(self.size_ijk),
            "origin_mm": [round(v, 6) for v in self.origin],
            "spacing_mm": [round(v, 6) for v in self.spacing],
            "direction": [round(v, 9) for v in self.direction],
        }

    # --- SimpleITK and files -------------------------------------------------------
    @classmethod
    def from_sitk(cls, image) -> Volume:
        """Wrap a 3-D SimpleITK image (copies the pixels)."""
        import SimpleITK as sitk

        if image.GetDimension() != 3:
            raise InputError(f"expected a 3-D image, got a {image.GetDimension()}-D one")
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise InputError("expected a scalar image, got a multi-component (colour) one")
        return cls(
            sitk.GetArrayFromImage(image),
            image.GetOrigin(),
            image.GetSpacing(),
            image.GetDirection(),
        )

    def to_sitk(self):
        """A SimpleITK image with this geometry (copies the pixels)."""
        import SimpleITK as sitk

        image = sitk.GetImageFromArray(np.ascontiguousarray(self.array))
        image.SetOrigin(self.origin)
        image.SetSpacing(self.spacing)
        image.SetDirection(self.direction)
        return image

    @classmethod
    def read(cls, path: str | Path) -> Volume:
        """Read a NIfTI, NRRD or MHA file (one clear :class:`InputError` on failure)."""
        import SimpleITK as sitk

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            detail = next((ln for ln in first if "ERROR" in ln or "rror" in ln), "")
            raise InputError(f"{path}: not a readable image {detail[:120]}".rstrip()) from None
        if image.GetDimension() == 3 and image.GetSize()[2] == 1:
            raise InputError(f"{path}: a 2-D image (one slice); a 3-D scan is needed")
        if image.GetDimension() != 3:
            raise InputError(f"{path}: a {image.GetDimension()}-D image; a 3-D scan is needed")
        return cls.from_sitk(image)

    def write(self, path: str | Path) -> None:
        """Write to ``path`` (format from the suffix, compressed where it can be)."""
        import SimpleITK as sitk

        sitk.WriteImage(self.to_sitk(), str(path), useCompression=True)
        name = str(path).lower()
        if name.endswith((".nii", ".nii.gz")):
            # ITK reports no error when the disk fills up (or a file-size limit is hit)
            # while it writes a gzip stream: check that the whole image is there
            held, expected = nifti_data_bytes(path)
            if held < expected:
                raise OSError(errno.EIO, f"written incompletely ({held} of {expected} "
                              "bytes): the disk is full or a file-size limit was reached",
                              str(path))


def nifti_data_bytes(path: str | Path) -> tuple[int, int]:
    """``(bytes the file holds, bytes its header announces)`` of a NIfTI file, ``.nii`` or
    ``.nii.gz`` (decompressed in blocks: bounded memory; a gzip stream that breaks off
    counts up to the break).

    Raises
    ------
    InputError
        The header is not a readable NIfTI header.
    """
    import gzip
    import zlib

    import nibabel as nib

    path = Path(path)
    try:
        header = nib.load(path).header
        expected = int(header.get_data_offset()) + int(
            np.prod(header.get_data_shape(), dtype=np.int64)
        ) * header.get_data_dtype().itemsize
    except Exception as exc:  # nibabel raises many types for a broken header
        raise InputError(f"{path}: not a readable NIfTI file ({type(exc).__name__})") from None
    if not path.name.lower().endswith(".gz"):
        return path.stat().st_size, expected
    held = 0
    with contextlib.suppress(EOFError, OSError, zlib.error), gzip.open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            held += len(block)
    return held, expected


def bounding_box(mask: np.ndarray, pad: int | Sequence[int] = 0) -> tuple[slice, ...] | None:
    """Slices (array order) of the bounding box of the True voxels of ``mask``, grown by
    ``pad`` voxels per axis and clipped to the array; None when ``mask`` is empty."""
    pads = [int(pad)] * mask.ndim if np.isscalar(pad) else [int(p) for p in pad]
    out = []
    for ax in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != ax)
        hit = np.flatnonzero(mask.any(axis=other))
        if hit.size == 0:
            return None
        out.append(slice(max(int(hit[0]) - pads[ax], 0),
                         min(int(hit[-1]) + pads[ax] + 1, mask.shape[ax])))
    return tuple(out)


def crop(vol: Volume, box: tuple[slice, ...], array: np.ndarray | None = None) -> Volume:
    """The sub-grid ``box`` (array-order slices with starts, as from :func:`bounding_box`) of
    ``vol``: same spacing and direction, origin at the box's first voxel; its array is
    ``array`` (already cut to the box) or ``vol.array[box]``."""
    start = np.array([s.start for s in box], dtype=float)
    origin = vol.index_to_world(start)
    return Volume(vol.array[box] if array is None else array, tuple(origin), vol.spacing,
                  vol.direction)


# --- blocks ----------------------------------------------------------------------------
def block_parts(a: np.ndarray, f: Sequence[int], fill=0) -> list[np.ndarray]:
    """The ``f[0] f[1] f[2]`` strided sub-grids of ``a`` padded with ``fill`` to whole
    blocks: element ``[K, J, I]`` of each is one voxel of block ``(K, J, I)``."""
    pad = [(0, (-n) % b) for n, b in zip(a.shape, f, strict=True)]
    if any(p for _, p in pad):
        a = np.pad(a, pad, constant_values=fill)
    return [a[x:: f[0], y:: f[1], z:: f[2]]
            for x in range(f[0]) for y in range(f[1]) for z in range(f[2])]


def block_reduce(a: np.ndarray, f: Sequence[int], how: str, *, fill=0, dtype=None
                 ) -> np.ndarray:
    """Reduce ``a`` over blocks of ``f = (fk, fj, fi)`` voxels (the last blocks padded with
    ``fill``).

    ``how``: ``"any"`` (bool), ``"count"`` (true voxels, int32), ``"max"`` (dtype of ``a``),
    ``"sum"`` (in ``dtype``, float32 by default) or ``"mean"`` (the sum over the whole block
    size, padding included). Sums are accumulated block part by block part, in the order of
    :func:`block_parts`. With ``f == (1, 1, 1)`` the result is ``a`` itself for ``"max"``,
    for ``"any"`` of a bool array and for ``"mean"`` of an array of ``dtype``; else a
    converted copy.
    """
    f = tuple(int(x) for x in f)
    if how == "count":
        how, dtype, a = "sum", np.int32, np.asarray(a, bool)
    if how == "any":
        a = np.asarray(a, bool)
        if f == (1, 1, 1):
            return a
        parts = block_parts(a, f, False)
        out = parts[0].copy()
        for p in parts[1:]:
            out |= p
        return out
    if how == "max":
        if f == (1, 1, 1):
            return a
        parts = block_parts(a, f, fill)
        out = parts[0].copy()
        for p in parts[1:]:
            np.maximum(out, p, out=out)
        return out
    if how not in ("sum", "mean"):
        raise ValueError(f"block_reduce: unknown reduction {how!r}")
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if how == "mean" and f == (1, 1, 1):
        return np.asarray(a, dt)
    parts = block_parts(a, f, fill)
    out = parts[0].astype(dt)
    for p in parts[1:]:
        out += p
    if how == "mean":
        out /= dt.type(f[0] * f[1] * f[2])
    return out


def block_expand(c: np.ndarray, f: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour upsampling of a :func:`block_reduce` grid (blocks of ``f``) back to
    ``shape``: voxel ``(k, j, i)`` gets block ``(k // fk, j // fj, i // fi)``. To be read
    only (with ``f == (1, 1, 1)`` it is a view of ``c``)."""
    f = tuple(int(x) for x in f)
    if f == (1, 1, 1):
        return c[: shape[0], : shape[1], : shape[2]]
    k, j, i = c.shape
    big = np.broadcast_to(c[:, None, :, None, :, None], (k, f[0], j, f[1], i, f[2]))
    return big.reshape(k * f[0], j * f[1], i * f[2])[: shape[0], : shape[1], : shape[2]]


def border_labels(lab: np.ndarray, n: int) -> np.ndarray:
    """Which of the labels ``0..n`` of ``lab`` (from :func:`scipy.ndimage.label`) touch the
    array's border: a boolean array of length ``n + 1`` (entry 0 as found)."""
    out = np.zeros(n + 1, bool)
    for ax in range(lab.ndim):
        for end in (0, -1):
            out[np.unique(np.take(lab, end, axis=ax))] = True
    return out


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with the background pockets that do not reach the array border filled
    (6-connected background): :func:`scipy.ndimage.binary_fill_holes` by one labelling,
    which is faster on large volumes."""
    from scipy import ndimage as ndi

    lab, n = ndi.label(~mask)
    if n == 0:
        return mask.copy()
    outer = border_labels(lab, n)
    outer[0] = True  # the mask itself
    return mask | ~outer[lab]


def resample_like(moving: Volume, reference: Volume, *, nearest: bool = True, default=0) -> Volume:
    """Resample ``moving`` onto the grid of ``reference`` (identity transform in world mm)."""
    import SimpleITK as sitk

    interp = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    out = sitk.Resample(
        moving.to_sitk(), reference.to_sitk(), sitk.Transform(), interp, default,
        moving.to_sitk().GetPixelID(),
    )
    return Volume.from_sitk(out)
