"""MRC volumes and MRCS image stacks, read and write through ``mrcfile``.

MRC stores ``data[z, y, x]`` (sections, rows, columns), the layout of our
volumes, plus a voxel size in angstrom. A stack (``.mrcs``) is ``(N, H, W)``
images with ``ispg = 0``; a volume has ``ispg = 1``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["read_mrc", "write_mrc"]


def write_mrc(path: str, data, voxel_size: float = 1.0, stack: bool = False) -> None:
    """Write a volume ``(S, S, S)`` / ``(D, H, W)`` or an image stack ``(N, H, W)``.

    Parameters
    ----------
    path : str
        Output file (overwritten).
    data : array_like
        3D array; float64 is stored as float32, integers as int16/float32.
    voxel_size : float
        Angstrom per voxel (or pixel).
    stack : bool
        Write as an image stack (``.mrcs``) rather than a volume.

    Raises
    ------
    ValueError
        Not 3D, or NaN/Inf values.
    """
    import mrcfile

    arr = np.asarray(data)
    if arr.ndim != 3:
        raise ValueError(f"data: expected a 3D volume or (N, H, W) stack, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError("data: contains NaN or Inf")
        arr = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.integer):
        small = arr.min() >= -32768 and arr.max() <= 32767
        arr = arr.astype(np.int16 if small else np.float32)
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(np.ascontiguousarray(arr))
        if stack:
            m.set_image_stack()
        else:
            m.set_volume()
        m.voxel_size = float(voxel_size)


def read_mrc(path: str) -> dict:
    """Read an MRC volume or MRCS stack.

    Returns
    -------
    dict
        ``data`` numpy array ``(D, H, W)`` (or ``(N, H, W)``), ``voxel_size``
        (angstrom, along x), ``is_stack`` bool.

    Raises
    ------
    ValueError
        The file is not a valid MRC file.
    """
    import mrcfile

    try:
        with mrcfile.open(path, permissive=False) as m:
            data = np.array(m.data)
            voxel = float(m.voxel_size.x)
            is_stack = bool(m.is_image_stack())
    except ValueError as exc:
        raise ValueError(f"{path}: not a valid MRC file ({exc})") from exc
    if data.ndim == 2:
        data = data[None]
    return {"data": data, "voxel_size": voxel, "is_stack": is_stack}
