"""Detection and linking on real colloids against trackpy, in the same run.

No arguments; CPU, one thread; writes ``benchmarks/results/tracking.json``.

Data: ``../shared/data/bulk_water/bulk_water_000-029.npy`` (30 bright-field
frames of 1 um spheres, dark on a bright background, ~11 px across).

Reference: trackpy ``batch(frames, 11, invert=True, minmass=150, processes=1)``
(the setting that gives the 417 particles per frame quoted in issue 15) and
``link(features, search_range=5, memory=3)`` (trackpy's walkthrough).
Ours: :func:`pyrolatent.segmentation.detect.detect_particles` with
``diameter=11, polarity="dark"`` and its default, data-chosen mass threshold,
then :func:`pyrolatent.analysis.tracking.link` with ``search_radius=5, max_gap=3``.

Keys:
``frac_trackpy_found``: trackpy's particles with one of ours within 2 px;
``frac_ours_unmatched``: ours with none of trackpy's within 2 px;
``link_agreement``: among particles both find (one-to-one, mutual nearest within
2 px in the same frame), links (a particle to the next detection of its track)
that both trackers make, over links that either makes (Jaccard);
``time_ratio_vs_trackpy``: our seconds (detect + link) over trackpy's (batch +
link), each the minimum of 3 timed runs after one untimed warm-up.
Also the per-frame counts, both timings, a like-for-like row against trackpy
with ``minmass=100`` (its docstring's advice for integer images), and the
previous path (band-pass map + Otsu + region centroids, as issue 15 measured it).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from pyrolatent.analysis.tracking import link  # noqa: E402
from pyrolatent.segmentation import locate  # noqa: E402
from pyrolatent.segmentation.detect import detect_particles  # noqa: E402
from pyrolatent.segmentation.filters import bandpass_map, otsu_threshold  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "bulk_water" / "bulk_water_000-029.npy"
MATCH_PX = 2.0


def run_trackpy(frames, minmass):
    import trackpy as tp

    tp.quiet()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        features = tp.batch(list(frames), 11, invert=True, minmass=minmass, processes=1)
        tracks = tp.link(features, 5, memory=3)
    return {
        "frame": tracks["frame"].to_numpy(np.int64),
        "row": tracks["y"].to_numpy(np.float64),
        "col": tracks["x"].to_numpy(np.float64),
        "track": tracks["particle"].to_numpy(np.int64),
    }


def run_ours(frames):
    found = detect_particles(frames, diameter=11, polarity="dark")
    return link(found, search_radius=5, max_gap=3)


def run_previous(frames):
    """The path issue 15 measured: band-pass map, Otsu threshold, region centroids."""
    feature = bandpass_map(frames, noise_sigma=1.0, background_sigma=6, dark_particles=True)
    found = locate(feature, threshold=otsu_threshold(feature), min_area=8, border_margin=3)
    return link(found, search_radius=5, max_gap=3)


def best_time(fn, repeats=3):
    fn()  # warm-up, untimed
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _frame_xy(table, f):
    sel = np.flatnonzero(table["frame"] == f)
    return sel, np.stack([table["row"][sel], table["col"][sel]], axis=1)


def match(ours, ref):
    """Detection fractions and the one-to-one (mutual nearest) matches per frame."""
    found = unmatched = 0
    pairs = []
    for f in np.unique(ref["frame"]):
        ia, a = _frame_xy(ref, f)
        ib, b = _frame_xy(ours, f)
        if len(a) == 0 or len(b) == 0:
            unmatched += len(b)
            continue
        da, ja = cKDTree(b).query(a)
        db, jb = cKDTree(a).query(b)
        found += int((da <= MATCH_PX).sum())
        unmatched += int((db > MATCH_PX).sum())
        mutual = (da <= MATCH_PX) & (jb[ja] == np.arange(len(a)))
        pairs += list(zip(ib[ja[mutual]], ia[mutual], strict=True))
    return found / len(ref["frame"]), unmatched / len(ours["frame"]), dict(pairs)


def _links(table, members):
    """Links (particle -> next detection of its track) between rows in ``members``."""
    order = np.lexsort((table["frame"], table["track"]))
    same = table["track"][order][1:] == table["track"][order][:-1]
    src, dst = order[:-1][same], order[1:][same]
    keep = np.isin(src, members) & np.isin(dst, members)
    return set(zip(src[keep].tolist(), dst[keep].tolist(), strict=True))


def link_agreement(ours, ref, pairs):
    ours_rows = np.fromiter(pairs.keys(), dtype=np.int64)
    ref_rows = np.fromiter(pairs.values(), dtype=np.int64)
    ours_links = {(pairs[a], pairs[b]) for a, b in _links(ours, ours_rows)}
    ref_links = _links(ref, ref_rows)
    union = ours_links | ref_links
    return len(ours_links & ref_links) / max(len(union), 1)


def compare(frames, minmass, ours_fn=run_ours, repeats=3):
    t_ref, ref = best_time(lambda: run_trackpy(frames, minmass), repeats)
    t_ours, ours = best_time(lambda: ours_fn(frames), repeats)
    found, unmatched, pairs = match(ours, ref)
    n = len(frames)
    return {
        "trackpy_minmass": minmass,
        "frac_trackpy_found": round(found, 4),
        "frac_ours_unmatched": round(unmatched, 4),
        "link_agreement": round(link_agreement(ours, ref, pairs), 4),
        "time_ratio_vs_trackpy": round(t_ours / t_ref, 3),
        "seconds_ours": round(t_ours, 3),
        "seconds_trackpy": round(t_ref, 3),
        "particles_per_frame_ours": round(len(ours["frame"]) / n, 1),
        "particles_per_frame_trackpy": round(len(ref["frame"]) / n, 1),
    }


def main() -> dict:
    frames = np.load(DATA)
    result = compare(frames, minmass=150)
    result["like_for_like_trackpy_minmass_100"] = compare(frames, minmass=100)
    result["previous_path_vs_trackpy_minmass_150"] = compare(
        frames, minmass=150, ours_fn=run_previous, repeats=1
    )
    result["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    out = ROOT / "benchmarks" / "results" / "tracking.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
