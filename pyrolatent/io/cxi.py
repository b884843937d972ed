"""CXI files (HDF5, the Coherent X-ray Imaging format of cxidb.org), read and write via h5py.

Layout used (CXI 1.6, the parts single-particle data need)::

    /cxi_version                                    int (160)
    /entry_1/data_1/data -> instrument_1/detector_1/data   (soft link)
    /entry_1/instrument_1/detector_1/data           (N, H, W) photon counts
    /entry_1/instrument_1/detector_1/mask           (H, W) uint32, 0 = good pixel
    /entry_1/instrument_1/detector_1/distance       metres
    /entry_1/instrument_1/detector_1/x_pixel_size   metres
    /entry_1/instrument_1/detector_1/y_pixel_size   metres
    /entry_1/instrument_1/source_1/wavelength       metres (optional)

Following the CXI convention a nonzero mask value flags a bad pixel; the
functions here return and take ``True = measured``. :class:`CXIFrames` reads
``(N, H, W)`` patterns lazily and turns blocks into sparse
:class:`~pyrolatent.spi.emc.frames.PhotonFrames` (a frame source for EMC).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..spi.emc.frames import PhotonFrames, check_detector_mask

__all__ = ["CXIFrames", "read_cxi", "write_cxi"]

_DET = "entry_1/instrument_1/detector_1"
_DATA_PATHS = ("entry_1/data_1/data", f"{_DET}/data", "entry_1/image_1/data")


def _find_data(f, path: str):
    for key in _DATA_PATHS:
        if key in f:
            return key
    raise ValueError(
        f"{path}: no pattern dataset; expected one of {', '.join('/' + k for k in _DATA_PATHS)}"
    )


def write_cxi(path: str, patterns, mask=None, distance: float | None = None,
              pixel_size: float | None = None, wavelength: float | None = None,
              compression: str | None = "gzip") -> None:  # fmt: skip
    """Write patterns (and mask, geometry) as a CXI file.

    Parameters
    ----------
    path : str
        Output ``.cxi``/``.h5`` file (written to a temporary name, then renamed).
    patterns : array_like
        ``(N, H, W)`` nonnegative counts (integers are stored as int32).
    mask : array_like, optional
        ``(H, W)`` bool, True = measured pixel.
    distance, pixel_size, wavelength : float, optional
        Detector distance, pixel edge and wavelength, in metres.
    compression : str, optional
        h5py compression of the pattern dataset.

    Raises
    ------
    ValueError
        Patterns not 3D, negative or non-finite, or a mask of the wrong shape.
    """
    import h5py

    arr = np.asarray(patterns)
    if arr.ndim != 3:
        raise ValueError(f"patterns: expected (N, H, W), got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError("patterns: contain NaN or Inf")
    if (arr < 0).any():
        raise ValueError(f"patterns: photon counts must be nonnegative ({int((arr < 0).sum())} "
                         "negative values)")  # fmt: skip
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.int32)
    if mask is not None:
        m = check_detector_mask(mask, arr.shape[1] * arr.shape[2]).numpy()
        if np.asarray(mask).shape != arr.shape[1:]:
            raise ValueError(f"mask: expected shape {arr.shape[1:]}, got {np.asarray(mask).shape}")
        mask = m.reshape(arr.shape[1:])
    tmp = f"{path}.tmp{os.getpid()}"
    with h5py.File(tmp, "w") as f:
        f["cxi_version"] = 160
        det = f.create_group(_DET)
        det.create_dataset("data", data=arr, compression=compression,
                           chunks=(1,) + arr.shape[1:])  # fmt: skip
        if mask is not None:
            det["mask"] = np.where(mask, 0, 1).astype(np.uint32)
        for key, value in (("distance", distance), ("x_pixel_size", pixel_size),
                           ("y_pixel_size", pixel_size)):  # fmt: skip
            if value is not None:
                det[key] = float(value)
        if wavelength is not None:
            f.create_group("entry_1/instrument_1/source_1")["wavelength"] = float(wavelength)
        f.create_group("entry_1/data_1")["data"] = h5py.SoftLink(f"/{_DET}/data")
    os.replace(tmp, path)


def read_cxi(path: str, load: bool = True) -> dict:
    """Read patterns, mask and geometry from a CXI file.

    Parameters
    ----------
    path : str
        CXI/HDF5 file.
    load : bool
        Load the patterns into memory (else ``"patterns"`` is None; use
        :class:`CXIFrames` to stream them).

    Returns
    -------
    dict
        ``patterns`` ``(N, H, W)`` numpy array (or None), ``mask`` ``(H, W)`` bool
        (True = measured; all True when the file has none), ``distance``,
        ``pixel_size``, ``wavelength`` (metres, or None when absent), ``shape``.

    Raises
    ------
    ValueError
        No pattern dataset at the CXI paths, a pattern dataset that is not
        ``(N, H, W)``, or a mask of another shape.
    """
    import h5py

    with h5py.File(path, "r") as f:
        key = _find_data(f, path)
        ds = f[key]
        if ds.ndim != 3:
            raise ValueError(f"{path}: /{key} has shape {ds.shape}; expected (N, H, W) patterns")
        shape = ds.shape
        patterns = ds[()] if load else None
        mask = np.ones(shape[1:], dtype=bool)
        if f"{_DET}/mask" in f:
            raw = f[f"{_DET}/mask"][()]
            if raw.shape != shape[1:]:
                raise ValueError(f"{path}: mask shape {raw.shape} does not match the patterns' "
                                 f"{shape[1:]}")  # fmt: skip
            mask = raw == 0

        def scalar(name):
            return float(f[name][()]) if name in f else None

        out = {
            "patterns": patterns,
            "mask": mask,
            "distance": scalar(f"{_DET}/distance"),
            "pixel_size": scalar(f"{_DET}/x_pixel_size"),
            "wavelength": scalar("entry_1/instrument_1/source_1/wavelength"),
            "shape": tuple(shape),
        }
    if patterns is not None and (patterns < 0).any():
        raise ValueError(f"{path}: patterns hold negative photon counts")
    return out


class CXIFrames:
    """Patterns of a CXI file as a sparse frame source (blocks read on demand).

    Parameters
    ----------
    path : str
        CXI file.

    Attributes
    ----------
    num_pixels : int
        ``H * W``.
    mask : numpy.ndarray
        ``(H, W)`` bool, True = measured.
    """

    def __init__(self, path: str):
        info = read_cxi(path, load=False)
        self.path = str(path)
        self.shape = info["shape"]
        self.mask = info["mask"]
        self.num_pixels = int(self.shape[1] * self.shape[2])

    def __len__(self) -> int:
        return int(self.shape[0])

    def block(self, start: int, stop: int) -> PhotonFrames:
        """Frames ``start:stop`` as :class:`PhotonFrames` (raises on negative counts)."""
        import h5py

        with h5py.File(self.path, "r") as f:
            arr = f[_find_data(f, self.path)][int(start) : int(stop)]
        return PhotonFrames.from_dense(torch.from_numpy(np.ascontiguousarray(arr)))
