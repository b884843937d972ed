"""Dragonfly's sparse photon files (``.emc``) and detector files, read and write.

The binary ``.emc`` format of Dragonfly (Ayyer et al. 2016), little-endian int32:

* a 1024-byte header: ``num_data``, ``num_pix``, ``ftype`` (0 = sparse), zeros;
* ``ones[num_data]``: the number of pixels with exactly one photon in each frame;
* ``multi[num_data]``: the number of pixels with more than one photon;
* ``place_ones[sum(ones)]``: those pixels' indices, frame after frame;
* ``place_multi[sum(multi)]`` and ``count_multi[sum(multi)]``: the other pixels
  and their counts.

:class:`EMCFile` maps the file into memory (``numpy.memmap``) and builds
:class:`~pyrolatent.spi.emc.frames.PhotonFrames` for a block of frames on
request, so EMC can stream ``10^6`` frames with a bounded memory.

Dragonfly's detector file is HDF5 with ``qx``, ``qy``, ``qz`` (voxels), ``corr``,
``mask`` (0 = good, 1 = merged but not used for orientations, 2 = bad), ``detd``
and ``ewald_rad``; :func:`read_dragonfly_detector` turns it into a
:class:`~pyrolatent.spi.emc.frames.Detector` whose measured pixels are those with
``mask == 0``.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..spi.emc.frames import Detector, PhotonFrames

__all__ = ["EMCFile", "read_dragonfly_detector", "read_emc", "write_dragonfly_detector",
           "write_emc"]  # fmt: skip

_HEADER_BYTES = 1024


class EMCFile:
    """A Dragonfly ``.emc`` photon file opened for block reads (memory-mapped).

    Parameters
    ----------
    path : str
        File name.

    Attributes
    ----------
    num_pixels : int
        Detector pixels ``P``.

    Raises
    ------
    ValueError
        Not a sparse ``.emc`` file, truncated, or with negative counts/indices.
    """

    def __init__(self, path: str):
        self.path = str(path)
        size = os.path.getsize(self.path)
        if size < _HEADER_BYTES:
            raise ValueError(f"{self.path}: too short for an .emc file ({size} bytes)")
        header = np.fromfile(self.path, dtype="<i4", count=3)
        num_data, num_pix, ftype = (int(v) for v in header)
        if ftype != 0:
            raise ValueError(f"{self.path}: ftype {ftype} is not a sparse .emc file (0)")
        if num_data < 0 or num_pix <= 0:
            raise ValueError(f"{self.path}: bad header num_data={num_data}, num_pix={num_pix}")
        self.num_pixels = num_pix
        self._n = num_data
        mm = np.memmap(self.path, dtype="<i4", mode="r", offset=_HEADER_BYTES)
        ones, multi = mm[:num_data], mm[num_data : 2 * num_data]
        if (ones < 0).any() or (multi < 0).any():
            raise ValueError(f"{self.path}: negative photon-list lengths")
        self._ones_off = np.concatenate([[0], np.cumsum(ones, dtype=np.int64)])
        self._multi_off = np.concatenate([[0], np.cumsum(multi, dtype=np.int64)])
        n1, nm = int(self._ones_off[-1]), int(self._multi_off[-1])
        need = 2 * num_data + n1 + 2 * nm
        if mm.shape[0] < need:
            raise ValueError(f"{self.path}: truncated ({mm.shape[0]} of {need} int32 values)")
        base = 2 * num_data
        self._place_ones = mm[base : base + n1]
        self._place_multi = mm[base + n1 : base + n1 + nm]
        self._count_multi = mm[base + n1 + nm : base + n1 + 2 * nm]

    def __len__(self) -> int:
        return self._n

    def block(self, start: int, stop: int) -> PhotonFrames:
        """Frames ``start:stop`` as :class:`PhotonFrames` (read from disk)."""
        start, stop = max(0, int(start)), min(self._n, int(stop))
        o1 = self._ones_off[start : stop + 1]
        om = self._multi_off[start : stop + 1]
        p1 = np.asarray(self._place_ones[o1[0] : o1[-1]])
        pm = np.asarray(self._place_multi[om[0] : om[-1]])
        cm = np.asarray(self._count_multi[om[0] : om[-1]])
        if (cm < 0).any():
            raise ValueError(f"{self.path}: negative photon counts in frames {start}:{stop}")
        n1, nm = np.diff(o1), np.diff(om)
        lens = n1 + nm
        offsets = np.concatenate([[0], np.cumsum(lens)])
        # interleave: each frame's ones, then its multis
        pos1 = np.repeat(offsets[:-1] - (o1[:-1] - o1[0]), n1) + np.arange(p1.shape[0])
        posm = np.repeat(offsets[:-1] + n1 - (om[:-1] - om[0]), nm) + np.arange(pm.shape[0])
        pixels = np.empty(int(offsets[-1]), dtype=np.int32)
        counts = np.empty(int(offsets[-1]), dtype=np.int32)
        pixels[pos1], counts[pos1] = p1, 1
        pixels[posm], counts[posm] = pm, cm
        return PhotonFrames(torch.from_numpy(offsets.astype(np.int64)), torch.from_numpy(pixels),
                            torch.from_numpy(counts), self.num_pixels)  # fmt: skip

    def read(self) -> PhotonFrames:
        """All frames in memory."""
        return self.block(0, self._n)


def read_emc(path: str) -> PhotonFrames:
    """Read a whole Dragonfly sparse ``.emc`` file into :class:`PhotonFrames`."""
    return EMCFile(path).read()


def write_emc(path: str, frames: PhotonFrames, chunk: int = 100000) -> None:
    """Write :class:`PhotonFrames` (or any frame source) as a Dragonfly sparse ``.emc`` file.

    One pass over the source, block by block (``place_multi``/``count_multi`` go to
    temporary files and are appended at the end), so a streamed source of any
    length is read once and never held whole.

    Parameters
    ----------
    path : str
        Output file (overwritten; written to a temporary name and renamed).
    frames : PhotonFrames or frame source
        Frames with ``len()``, ``num_pixels`` and ``block(start, stop)``.
    chunk : int
        Frames per block while writing.
    """
    import shutil

    n, p = len(frames), int(frames.num_pixels)
    tmp = f"{path}.tmp{os.getpid()}"
    ones = np.zeros(n, dtype="<i4")
    multi = np.zeros(n, dtype="<i4")
    try:
        with open(tmp, "wb") as fh, open(tmp + ".pm", "wb") as fpm, open(tmp + ".cm", "wb") as fcm:
            header = np.zeros(_HEADER_BYTES // 4, dtype="<i4")
            header[:3] = (n, p, 0)
            header.tofile(fh)
            fh.seek(_HEADER_BYTES + 8 * n)
            for a in range(0, n, chunk):
                blk = frames.block(a, a + chunk)
                rows = blk.frame_rows().numpy()
                c, px = blk.counts.numpy(), blk.pixels.numpy()
                single, many = c == 1, c > 1
                ones[a : a + len(blk)] = np.bincount(rows[single], minlength=len(blk))
                multi[a : a + len(blk)] = np.bincount(rows[many], minlength=len(blk))
                px[single].astype("<i4").tofile(fh)
                px[many].astype("<i4").tofile(fpm)
                c[many].astype("<i4").tofile(fcm)
        with open(tmp, "r+b") as fh:
            fh.seek(_HEADER_BYTES)
            ones.tofile(fh)
            multi.tofile(fh)
            fh.seek(0, os.SEEK_END)
            for part in (tmp + ".pm", tmp + ".cm"):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, fh, 1 << 24)
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp + ".pm", tmp + ".cm"):
            if os.path.exists(leftover):
                os.remove(leftover)


def read_dragonfly_detector(path: str) -> Detector:
    """A :class:`Detector` from Dragonfly's HDF5 detector file (``mask == 0`` measured)."""
    import h5py

    with h5py.File(path, "r") as f:
        missing = [k for k in ("qx", "qy", "qz", "corr", "mask") if k not in f]
        if missing:
            raise ValueError(f"{path}: not a Dragonfly detector file (missing {missing})")
        q = np.stack([f["qx"][:], f["qy"][:], f["qz"][:]], axis=1).astype(np.float32)
        corr = f["corr"][:].astype(np.float32)
        mask = f["mask"][:]
    return Detector(coords=torch.from_numpy(q), correction=torch.from_numpy(corr),
                    mask=torch.from_numpy(mask == 0))  # fmt: skip


def write_dragonfly_detector(path: str, detector: Detector, detd: float = 1.0e4,
                             ewald_rad: float = 1.0e4) -> None:  # fmt: skip
    """Write a :class:`Detector` as Dragonfly's HDF5 detector file.

    Unmeasured pixels get ``mask = 2``. ``detd`` (pixels) and ``ewald_rad``
    (voxels) are stored for Dragonfly's 2D views; a flat slice corresponds to
    large values.
    """
    import h5py

    q = detector.coords.double().numpy()
    with h5py.File(path, "w") as f:
        f["qx"], f["qy"], f["qz"] = q[:, 0], q[:, 1], q[:, 2]
        f["corr"] = detector.correction.double().numpy()
        f["mask"] = np.where(detector.mask.numpy(), 0, 2).astype("u1")
        f["detd"] = float(detd)
        f["ewald_rad"] = float(ewald_rad)
