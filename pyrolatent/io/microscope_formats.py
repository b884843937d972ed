"""AFM files through AFMReader and TEM/STEM files through rosettasciio, read lazily.

* ``.asd`` (HS-AFM movies): the header is parsed by AFMReader; frames are then
  memory-mapped (each frame is a 32-byte header and ``int16`` heights) and
  converted to nanometres with AFMReader's own converter, one frame at a time.
  The frame time comes from the header (stored in ms).
* ``.spm``, ``.jpk``, ``.ibw`` (single AFM images): loaded by AFMReader, one frame.
* ``.dm3``, ``.dm4``, ``.emd``, ``.ser``, ``.emi``: rosettasciio's reader with
  ``lazy=True`` (dask arrays, computed frame by frame); pixel size and frame
  time from the signal's axes and their units. A TIA ``.ser`` is read through
  the ``.emi`` beside it (``name_1.ser`` -> ``name.emi``), which holds the
  acquisition mode that decides real (nm) or reciprocal (1/nm) units; without
  it the pixel size is left unknown (rosettasciio's ``.ser``-only reader
  assumes metres, which makes a diffraction pattern's 0.042 1/nm read as
  4e16 nm).

Only an image or a stack of images over time is a movie: a navigation axis
with a unit that is not a time (an energy-loss or wavelength axis of a
spectrum image, a scan position) is refused without ``axes=``, never read
as time.
"""

from __future__ import annotations

import glob
import warnings
from pathlib import Path

import numpy as np

from .lazy_movie import LazyMovie, MovieMetadata, require, resolve_axes, to_nm, to_s

__all__ = ["AFM_SUFFIXES", "TEM_SUFFIXES", "open_afm", "open_tem"]

AFM_SUFFIXES = {".asd": "TP", ".spm": "Height", ".jpk": "height_trace", ".ibw": "HeightTracee"}
TEM_SUFFIXES = {".dm3": "digitalmicrograph", ".dm4": "digitalmicrograph", ".emd": "emd"}
TEM_SUFFIXES |= {".ser": "tia", ".emi": "tia"}
_ASD_FRAME_HEADER = 32  # bytes before each frame's heights


class _ASDFrames:
    """Frames of one ``.asd`` channel as an array-like ``(T, Y, X)`` of nanometres."""

    def __init__(self, path, header, data_start, converter):
        t, h, w = header["num_frames"], header["y_pixels"], header["x_pixels"]
        self.shape = (t, h, w)
        self._stride = _ASD_FRAME_HEADER // 2 + h * w  # in int16 words
        self._raw = np.memmap(
            path, dtype="<i2", mode="r", offset=data_start, shape=(t, self._stride)
        )
        self._convert = converter

    def __getitem__(self, index):
        t_index, *yx = index
        raw = np.asarray(self._raw[t_index, _ASD_FRAME_HEADER // 2 :])
        heights = self._convert.level_to_voltage(raw.astype(np.float64))
        out = np.asarray(heights).reshape(*raw.shape[:-1], *self.shape[1:])
        return out[(Ellipsis, *yx)] if yx else out


def _open_asd(path: Path, channel: str) -> LazyMovie:
    asd = require("AFMReader.asd", extra="afm")
    with open(path, "rb") as f:
        version = asd.read_file_version(f)
        readers = {
            0: asd.read_header_file_version_0,
            1: asd.read_header_file_version_1,
            2: asd.read_header_file_version_2,
        }
        if version not in readers:
            raise ValueError(f"{path}: unknown .asd file version {version}")
        header = readers[version](f)
        data_start = f.tell()
    channels = [header.get("channel1"), header.get("channel2")]
    if channel not in channels:
        raise ValueError(f"{path}: channel {channel!r} not in the file's channels {channels}")
    frame_bytes = header["frame_header_length"] + 2 * header["x_pixels"] * header["y_pixels"]
    if header["frame_header_length"] != _ASD_FRAME_HEADER:
        raise ValueError(f"{path}: unexpected .asd frame header of {frame_bytes} bytes")
    if channel == channels[1]:
        data_start += header["num_frames"] * frame_bytes
    scaling = asd.calculate_scaling_factor(
        channel=channel,
        z_piezo_gain=header["z_piezo_gain"],
        z_piezo_extension=header["z_piezo_extension"],
        scanner_sensitivity=header["scanner_sensitivity"],
        phase_sensitivity=header["phase_sensitivity"],
    )
    converter = asd.create_analogue_digital_converter(
        analogue_digital_range=header["analogue_digital_range"], scaling_factor=scaling
    )
    frame_time = header.get("frame_time")
    meta = MovieMetadata(
        pixel_size_nm=float(header["x_nm"]) / float(header["x_pixels"]),
        frame_time_s=to_s(frame_time, "ms") if frame_time else None,
        axes="TYX",
        source=f"{path}::{channel}",
        extra={k: v for k, v in header.items() if isinstance(v, (int, float, str))},
    )
    return LazyMovie(_ASDFrames(path, header, data_start, converter), "TYX", meta)


def open_afm(path, *, channel: str | None = None) -> LazyMovie:
    """Open an AFM file through AFMReader (``.asd`` movies lazily; single images whole).

    Parameters
    ----------
    path : path-like
        ``.asd``, ``.spm``, ``.jpk`` or ``.ibw``.
    channel : str, optional
        AFMReader channel name; default ``"TP"`` (asd), ``"Height"`` (spm),
        ``"height_trace"`` (jpk), ``"HeightTracee"`` (ibw).

    Returns
    -------
    LazyMovie
        Heights in nanometres; ``metadata.pixel_size_nm`` from the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in AFM_SUFFIXES:
        raise ValueError(f"{path}: not an AFM file ({sorted(AFM_SUFFIXES)})")
    channel = AFM_SUFFIXES[suffix] if channel is None else channel
    if suffix == ".asd":
        return _open_asd(path, channel)
    module = require(f"AFMReader.{suffix[1:]}", extra="afm")
    image, pixel_nm = getattr(module, f"load_{suffix[1:]}")(path, channel)
    image = np.asarray(image, dtype=np.float32)
    meta = MovieMetadata(float(pixel_nm), None, "YX", f"{path}::{channel}")
    return LazyMovie(image, "YX", meta)


def _unitless(axis: dict) -> bool:
    return axis.get("units") in (None, "", "<undefined>")


def _tem_axes(axes_meta: list[dict], axes: str | None) -> tuple[str, float | None, float | None]:
    """Layout, pixel size (nm) and frame time (s) from rosettasciio's axes list.

    Without ``axes``: the time axis is the one axis in time units or, else, the
    one navigation axis without a unit (an image stack); the two others must be
    signal axes in one unit (an image). Anything else (a spectrum, a spectrum
    image, a 4-D scan) is refused.
    """
    if axes is None:
        timed = [a for a in axes_meta if to_s(1.0, a.get("units")) is not None]
        stack = [a for a in axes_meta if a.get("navigate", False) and _unitless(a)]
        time_axes = timed or stack
        rest = [a for a in axes_meta if all(a is not t for t in time_axes)]
        image = (
            len(rest) == 2
            and not any(a.get("navigate", False) for a in rest)
            and rest[0].get("units") == rest[1].get("units")
        )
        if not image or len(time_axes) > 1:
            described = [
                f"{a.get('name')} ({a.get('units') or 'no unit'}, "
                f"{'navigation' if a.get('navigate') else 'signal'})"
                for a in axes_meta
            ]
            raise ValueError(
                f"not an image or a stack of images over time: axes {described}; "
                "pass axes= (e.g. axes='TYX') to read it as one"
            )
        letters = {id(a): "T" for a in time_axes} | {id(rest[0]): "Y", id(rest[1]): "X"}
        axes = "".join(letters[id(a)] for a in axes_meta)
    x_axis = axes_meta[axes.index("X")]
    pixel = to_nm(x_axis.get("scale"), x_axis.get("units"))
    frame_time = None
    if "T" in axes:
        t_axis = axes_meta[axes.index("T")]
        frame_time = to_s(t_axis.get("scale"), t_axis.get("units"))
    return axes, pixel, frame_time


def _tia_signals(path: Path, reader) -> tuple[list[dict], bool]:
    """The signals of a TIA ``.ser`` file, read through its ``.emi`` when it is beside it.

    Returns the signals and whether the units come from the ``.emi``.
    """
    stem, _, number = path.stem.rpartition("_")
    emi = path.with_name(f"{stem}.emi")
    if number.isdigit() and emi.is_file():
        sers = sorted(p.name for p in path.parent.glob(f"{glob.escape(stem)}_[0-9].ser"))
        signals = reader.file_reader(str(emi), lazy=True)
        if len(signals) == len(sers) and path.name in sers:  # else some .ser was skipped
            return [signals[sers.index(path.name)]], True
    return reader.file_reader(str(path), lazy=True), False


def open_tem(path, *, axes: str | None = None, channel=None, signal: int = 0) -> LazyMovie:
    """Open a TEM/STEM file through rosettasciio, lazily.

    Parameters
    ----------
    path : path-like
        ``.dm3``, ``.dm4``, ``.emd`` (Velox or NCEM), ``.ser`` (read with the
        ``.emi`` beside it when there) or ``.emi`` (its ``.ser`` files as signals).
    axes : str, optional
        Layout of the data array when rosettasciio's axes do not make it clear
        (an image: two signal axes; a movie: one navigation axis and two signal axes).
    channel : int, optional
        Index on a ``C`` axis given in ``axes``.
    signal : int
        Which signal of a file holding several (e.g. EMD with several detectors).

    Returns
    -------
    LazyMovie
        Pixel size and frame time from the axes' scales and units when they are
        lengths and times.
    """
    path = Path(path)
    plugin = TEM_SUFFIXES.get(path.suffix.lower())
    if plugin is None:
        raise ValueError(f"{path}: not a TEM file ({sorted(TEM_SUFFIXES)})")
    reader = require(f"rsciio.{plugin}", extra="tem")
    with_units = True
    if path.suffix.lower() == ".ser":
        signals, with_units = _tia_signals(path, reader)
    else:
        signals = reader.file_reader(str(path), lazy=True)
    if not 0 <= signal < len(signals):
        raise ValueError(f"{path}: signal={signal} but the file has {len(signals)} signal(s)")
    sig = signals[signal]
    data = sig["data"]
    try:
        if axes is not None:
            axes = resolve_axes(tuple(data.shape), axes)
        layout, pixel, frame_time = _tem_axes(list(sig["axes"]), axes)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not with_units and pixel is not None:
        warnings.warn(
            f"{path}: no .emi file beside it, so whether its pixels are nm or 1/nm is "
            "unknown; pixel size left unset",
            stacklevel=2,
        )
        pixel = None
    layout = resolve_axes(tuple(data.shape), layout)
    title = sig.get("metadata", {}).get("General", {}).get("title", "")
    meta = MovieMetadata(pixel, frame_time, layout, f"{path}::{signal}", {"title": title})
    return LazyMovie(data, layout, meta, channel)
