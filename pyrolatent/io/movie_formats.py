"""Lazy readers for the movie formats users have, with pixel size and frame time.

:func:`open_movie` opens a file and returns a :class:`LazyMovie`: a ``(T, H, W)``
float32 view whose frames are read on demand (``movie[i]``, ``movie[a:b]``,
``movie.block(start, stop)``), never the whole file at once, and a
:class:`MovieMetadata` with the pixel size (nm) and frame time (s) when the
file states them.

Formats (the library of each is imported only when its format is opened):

* TIFF / OME-TIFF / ImageJ hyperstacks (``tifffile``): one page per plane;
* HDF5 (``h5py``) and zarr (``zarr``) datasets; attributes ``pixel_size_nm``,
  ``frame_time_s`` and ``axes`` are read when present;
* MRC stacks (``mrcfile``, memory-mapped; voxel size in angstrom -> nm);
* AFM files through ``AFMReader`` and TEM/STEM files through ``rosettasciio``:
  see :mod:`pyrolatent.io.microscope_formats`;
* ``.npy`` (frames read on demand), ``.npz`` (one array, ``key=``) and images (``.png``,
  ``.jpg``, ...; colour averaged to grey unless ``channel=`` picks one), read
  with numpy and scikit-image; they state no pixel size or frame time.

Layout: ``axes`` names each dimension of the stored array with one letter of
``T`` (time), ``C`` (channel), ``Z`` (a stack read as time), ``Y``, ``X``, e.g.
``"TYX"`` or ``"TCYX"``. 2-D arrays are ``"YX"`` and 3-D arrays ``"TYX"``
unless the last dimension is 3 or 4 long (then it may be colour and ``axes``
is required); 4-D and larger arrays need ``axes`` (or a file that states them):
they get a clear error, never a guess. A ``C`` axis longer than 1 needs
``channel=``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import microscope_formats as micro
from .lazy_movie import AXIS_LETTERS, LazyMovie, MovieMetadata, require, resolve_axes, to_nm, to_s
from .npy_movie import open_npy

__all__ = [
    "MovieMetadata",
    "LazyMovie",
    "open_movie",
    "open_tiff",
    "open_hdf5",
    "open_zarr",
    "open_mrc",
    "open_afm",
    "open_tem",
    "open_array",
    "open_image",
    "resolve_axes",
    "SUFFIXES",
]

open_afm = micro.open_afm
open_tem = micro.open_tem


class _TiffPlanes:
    """Planes of a TIFF series as an array-like that reads only the pages asked for."""

    def __init__(self, series):
        self._series, self._pages = series, series.pages
        self.shape = tuple(series.shape)
        self._lead = self.shape[:-2]

    def __getitem__(self, index):
        lead_index, yx = index[: len(self._lead)], index[len(self._lead) :]
        grids = np.ix_(*[np.arange(n)[i] if not isinstance(i, int) else np.array([i])
                         for i, n in zip(lead_index, self._lead, strict=True)])  # fmt: skip
        pages = (
            np.ravel_multi_index(np.broadcast_arrays(*grids), self._lead) if self._lead else None
        )
        if pages is None:
            out = self._pages[0].asarray()
        else:
            keys = [int(p) for p in pages.ravel()]
            size = (len(keys), *self.shape[-2:])
            # tifffile reads a list of pages much faster than page by page
            flat = self._series.asarray(key=keys) if keys else np.zeros(size, self._series.dtype)
            out = flat.reshape(*pages.shape, *self.shape[-2:])
            squeeze = tuple(k for k, i in enumerate(lead_index) if isinstance(i, int))
            out = out.squeeze(axis=squeeze)
        return out[yx] if yx else out


def open_tiff(path, *, axes: str | None = None, channel: int | None = None) -> LazyMovie:
    """Open a TIFF, OME-TIFF or ImageJ stack lazily (one page per plane).

    The layout comes from ``axes`` or, else, from the file (OME / ImageJ
    metadata, as tifffile reads it; ``Q``/``I`` axes count as time). Pixel size:
    OME ``PhysicalSizeX`` (with its unit) or the ImageJ resolution and unit;
    frame time: OME ``TimeIncrement`` or ImageJ ``finterval`` (seconds).
    """
    tifffile = require("tifffile")
    tif = tifffile.TiffFile(path)
    tif.pages.useframes = True  # light page objects (offsets only): 5-10x faster on long stacks
    series = tif.series[0]
    stated = None
    shaped = tif.is_shaped and "axes" in (tif.shaped_metadata or [{}])[0]
    if tif.is_ome or tif.is_imagej or shaped:  # the file states its layout
        stated = series.axes.replace("Q", "T").replace("I", "T").replace("S", "C")
        if stated.count("T") > 1 or set(stated) - AXIS_LETTERS:
            stated = None
    if len(series.pages) == int(np.prod(series.shape[:-2])) and series.axes[-2:] == "YX":
        source = _TiffPlanes(series)
    else:  # samples or tiles inside pages: zarr reads only the chunks asked for
        source = require("zarr").open(series.aszarr(), mode="r")
    pixel, dt, extra = None, None, {}
    if tif.is_ome:
        import xml.etree.ElementTree as ET

        root = ET.fromstring(tif.ome_metadata)
        pix = next((e for e in root.iter() if e.tag.endswith("Pixels")), None)
        if pix is not None:
            pixel = to_nm(pix.get("PhysicalSizeX"), pix.get("PhysicalSizeXUnit", "µm"))
            dt = to_s(pix.get("TimeIncrement"), pix.get("TimeIncrementUnit", "s"))
    elif tif.is_imagej:
        ij = tif.imagej_metadata or {}
        extra["imagej"] = {k: v for k, v in ij.items() if isinstance(v, (int, float, str))}
        dt = float(ij["finterval"]) if "finterval" in ij else None
        res = series.pages[0].tags.get("XResolution")
        if res is not None and ij.get("unit"):
            num, den = res.value
            pixel = to_nm(den / num, ij["unit"]) if num else None
    meta = MovieMetadata(pixel, dt, resolve_axes(series.shape, axes, stated), str(path), extra)
    return LazyMovie(source, meta.axes, meta, channel)


def _array_metadata(attrs, shape, axes, source) -> MovieMetadata:
    stated = attrs.get("axes")
    stated = stated.decode() if isinstance(stated, bytes) else stated
    pixel = attrs.get("pixel_size_nm")
    dt = attrs.get("frame_time_s")
    return MovieMetadata(
        None if pixel is None else float(pixel),
        None if dt is None else float(dt),
        resolve_axes(tuple(shape), axes, stated),
        source,
    )


def _single_dataset(names, path, kind):
    if len(names) != 1:
        raise ValueError(f"{path}: {len(names)} {kind} found {sorted(names)[:10]}; pass dataset=")
    return names[0]


def open_hdf5(path, *, dataset: str | None = None, axes=None, channel=None) -> LazyMovie:
    """Open an HDF5 dataset lazily (``dataset=`` may be omitted when there is one)."""
    h5py = require("h5py")
    f = h5py.File(path, "r")
    if dataset is None:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        dataset = _single_dataset([n for n in names if f[n].ndim >= 2], path, "datasets")
    ds = f[dataset]
    meta = _array_metadata(ds.attrs, ds.shape, axes, f"{path}::{dataset}")
    return LazyMovie(ds, meta.axes, meta, channel)


def open_zarr(path, *, dataset: str | None = None, axes=None, channel=None) -> LazyMovie:
    """Open a zarr array (or an array inside a zarr group) lazily."""
    zarr = require("zarr")
    node = zarr.open(str(path), mode="r")
    if not hasattr(node, "shape"):
        if dataset is None:
            names = [k for k, v in node.arrays() if len(v.shape) >= 2]
            dataset = _single_dataset(names, path, "arrays")
        node = node[dataset]
    meta = _array_metadata(dict(node.attrs), node.shape, axes, f"{path}::{dataset or ''}")
    return LazyMovie(node, meta.axes, meta, channel)


def open_mrc(path, *, axes=None, channel=None) -> LazyMovie:
    """Open an MRC stack memory-mapped (sections as frames; voxel size angstrom -> nm)."""
    mrcfile = require("mrcfile")
    mrc = mrcfile.mmap(path, mode="r", permissive=True)
    data = mrc.data
    vx = float(mrc.voxel_size.x)
    meta = MovieMetadata(
        pixel_size_nm=vx / 10.0 if vx > 0 else None,
        frame_time_s=None,
        axes=resolve_axes(data.shape, axes),
        source=str(path),
        extra={"mrc_header_nz": int(mrc.header.nz)},
    )
    return LazyMovie(data, meta.axes, meta, channel)


def open_array(path, *, key: str | None = None, axes=None, channel=None) -> LazyMovie:
    """Open a ``.npy`` array (frames read on demand: :func:`~pyrolatent.io.npy_movie.open_npy`)
    or one array of a ``.npz`` file (``key=``; read whole)."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return open_npy(path, axes=axes, channel=channel)
    with np.load(path, allow_pickle=False) as npz:
        names = list(npz.keys())
        if key is None:
            if len(names) != 1:
                raise ValueError(f"{path}: holds arrays {names}; choose one with key=")
            key = names[0]
        if key not in names:
            raise ValueError(f"{path}: no array {key!r} (has {names})")
        data = npz[key]
    meta = MovieMetadata(None, None, resolve_axes(data.shape, axes), str(path))
    return LazyMovie(data, meta.axes, meta, channel)


def open_image(path, *, channel: int | None = None) -> LazyMovie:
    """Open one image (``.png``, ``.jpg``, ...) as a 1-frame movie.

    RGB(A) images are averaged over R, G, B (alpha ignored) unless ``channel``
    picks one colour.
    """
    from skimage.io import imread

    image = imread(path)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        n_colours = image.shape[-1]
        if channel is None:
            image = image[..., :3].astype(np.float64).mean(axis=-1)
        elif not 0 <= channel < n_colours:
            raise ValueError(f"channel {channel} out of range for {n_colours} colour channels")
        else:
            image = image[..., channel]
    elif channel is not None:
        raise ValueError(f"{path}: channel= given but this image has no colour channels")
    meta = MovieMetadata(None, None, resolve_axes(image.shape, None), str(path))
    return LazyMovie(image, meta.axes, meta)


_READERS = {".tif": "tiff", ".tiff": "tiff", ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5"}
_READERS |= {".cxi": "hdf5", ".zarr": "zarr", ".mrc": "mrc", ".mrcs": "mrc", ".st": "mrc"}
_READERS |= {".npy": "array", ".npz": "array"}
_READERS |= dict.fromkeys((".png", ".jpg", ".jpeg", ".bmp", ".gif"), "image")
_READERS |= dict.fromkeys(micro.AFM_SUFFIXES, "afm") | dict.fromkeys(micro.TEM_SUFFIXES, "tem")
#: Every suffix :func:`open_movie` reads.
SUFFIXES = tuple(_READERS)


def open_movie(path, *, axes: str | None = None, channel: int | None = None, **options):
    """Open a movie file lazily, choosing the reader from the suffix.

    Parameters
    ----------
    path : path-like
        ``.tif``/``.tiff`` (incl. OME-TIFF), ``.h5``/``.hdf5``/``.cxi``, ``.zarr``,
        ``.mrc``/``.mrcs``/``.st``, AFM (``.asd``, ``.spm``, ``.jpk``, ``.ibw``),
        TEM/STEM (``.dm3``, ``.dm4``, ``.emd``, ``.ser``, ``.emi``), ``.npy``,
        ``.npz`` or an image (``.png``, ``.jpg``, ...): :data:`SUFFIXES`.
    axes : str, optional
        Layout of the stored array (required where it is ambiguous).
    channel : int, optional
        Channel index where there is a ``C`` axis.
    **options
        ``dataset=`` (HDF5, zarr; for ``.npz`` the array, also ``key=``),
        ``afm_channel=`` (AFM: e.g. ``"TP"``, ``"Height"``), ``signal=`` (TEM files
        with several signals).

    Returns
    -------
    LazyMovie

    Raises
    ------
    ValueError
        Unknown suffix or ambiguous layout. ``FileNotFoundError`` if absent;
        ``ImportError`` naming the package to install when a reader is missing;
        ``TypeError`` for an unknown option.
    """
    unknown = set(options) - {"dataset", "key", "afm_channel", "signal"}
    if unknown:
        raise TypeError(f"open_movie: unknown options {sorted(unknown)}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: does not exist (expected a movie file or folder)")
    suffix = path.suffix.lower()
    kind = _READERS.get(suffix)
    dataset = options.get("dataset")
    if kind == "tiff":
        return open_tiff(path, axes=axes, channel=channel)
    if kind == "hdf5":
        return open_hdf5(path, dataset=dataset, axes=axes, channel=channel)
    if kind == "zarr":
        return open_zarr(path, dataset=dataset, axes=axes, channel=channel)
    if kind == "mrc":
        return open_mrc(path, axes=axes, channel=channel)
    if kind == "array":
        return open_array(path, key=options.get("key") or dataset, axes=axes, channel=channel)
    if kind == "image":
        return open_image(path, channel=channel)
    if kind == "afm":
        return micro.open_afm(path, channel=options.get("afm_channel"))
    if kind == "tem":
        return micro.open_tem(path, axes=axes, channel=channel, signal=options.get("signal", 0))
    raise ValueError(
        f"{path}: unsupported file type {suffix!r} (expected one of {', '.join(SUFFIXES)})"
    )
