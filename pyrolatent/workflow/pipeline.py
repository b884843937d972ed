"""The demo pipeline as resumable stages.

Each stage writes its outputs atomically and, last, a marker
``stages/<name>.json`` holding its configuration (:func:`config_dict` of the
stage's config). On a rerun with the same output folder a stage is skipped
when its marker exists, its configuration is unchanged and every output file
exists and parses; otherwise it runs again (and so do the stages after it,
whose markers depend on its outputs).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from .._renamed import progress_from_quiet
from ..io.files import is_valid_file, load_json, save_json
from .configs import DemoConfig, config_dict
from .report import FIGURES, write_report
from .stages import (
    OUTPUTS,
    stage_analyze,
    stage_crops,
    stage_locate,
    stage_movie,
    stage_segment,
    stage_train,
)

__all__ = ["DemoConfig", "run_demo", "stage_is_done"]


def _marker(out: Path, name: str) -> Path:
    return out / "stages" / f"{name}.json"


def stage_is_done(out, name: str, config: dict) -> bool:
    """The stage's marker matches ``config`` and all its outputs are valid."""
    out = Path(out)
    m = _marker(out, name)
    if not is_valid_file(m):
        return False
    if load_json(m).get("config") != config:
        return False
    return all(is_valid_file(out / f) for f in OUTPUTS.get(name, []))


def _stages(out: Path, cfg: DemoConfig, progress: bool, upstream_ran: bool):
    """``(name, config, run)`` of every stage, in order."""
    return [
        ("movie", cfg.movie, lambda: stage_movie(out, cfg.movie)),
        (
            "segment",
            cfg.segment,
            # label-free: pseudo-masks train, the movie's masks only score
            lambda: stage_segment(
                out,
                out / "movie.npy",
                cfg.segment,
                masks_path=out / "masks.npy",
                label_free=cfg.label_free,
                progress=progress,
            ),
        ),
        (
            "locate",
            cfg.locate,
            lambda: stage_locate(
                out, out / "probability.npy", cfg.locate, variance_path=out / "variance.npy"
            ),
        ),
        (
            "crops",
            cfg.crops,
            lambda: stage_crops(out, out / "movie.npy", out / "particles.csv", cfg.crops),
        ),
        (
            "train",
            cfg.train,
            # an interrupted training resumes up to its total; new inputs start over
            lambda: stage_train(
                out,
                out / "crops.npy",
                out / "crops_index.csv",
                cfg.train,
                resume="fresh" if upstream_ran() else "total",
                progress=progress,
            ),
        ),
        (
            "analyze",
            cfg.analyze,
            lambda: stage_analyze(
                out,
                out / "latents.csv",
                out / "particles.csv",
                cfg.analyze,
                n_frames=cfg.movie.n_frames,
                progress=progress,
            ),
        ),
    ]


def run_demo(
    out="pyrolatent-report",
    quick: bool = False,
    seed: int = 0,
    progress: bool = True,
    *,
    config: DemoConfig | None = None,
    label_free: bool = False,
    quiet: bool | None = None,
):
    """Run the whole self-assembly chain on a generated movie and write the report.

    Parameters
    ----------
    out : path-like
        Output folder (created); an interrupted run resumes from the finished
        stages.
    quick : bool
        Small movie and short training (the ``--quick`` preset).
    seed : int
    progress : bool
        Show progress bars (``quiet=`` is a deprecated alias).
    config : DemoConfig, optional
        Overrides ``quick`` and ``seed``.
    label_free : bool
        Train the segmentation on pseudo-masks of the clearest frames, not on
        the movie's masks (which then only score it): ``DemoConfig.label_free``.

    Returns
    -------
    dict
        The report's ``summary.json`` content.
    """
    progress = progress_from_quiet(progress, quiet, where="run_demo")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = config or DemoConfig.preset("quick" if quick else "default", seed=seed)
    if label_free:
        cfg = replace(cfg, label_free=True)
    timings = {}
    ran = []
    stages = _stages(out, cfg, progress, lambda: bool(ran))
    bar = tqdm(stages + [("report", None, None)], desc="demo", disable=not progress, unit="stage")
    for name, stage_config, fn in bar:
        bar.set_description(f"demo: {name}")
        if name == "report":
            break
        marker = config_dict(stage_config)
        if name == "segment":  # the training labels are part of the segment stage's input
            marker["label_free"] = cfg.label_free
        if not ran and stage_is_done(out, name, marker):
            timings[name] = load_json(_marker(out, name)).get("seconds", 0.0)
            bar.write(f"[{name}] outputs exist and are valid: skipped") if progress else None
            continue
        t0 = time.perf_counter()
        fn()
        ran.append(name)  # later stages depend on these outputs
        timings[name] = round(time.perf_counter() - t0, 2)
        save_json(_marker(out, name), {"config": marker, "seconds": timings[name]})
    t0 = time.perf_counter()
    write_report(out, timings=timings)
    timings["report"] = round(time.perf_counter() - t0, 2)
    bar.close()
    summary = load_json(out / "summary.json")
    missing = [f for f in FIGURES if not is_valid_file(out / "figures" / f)]
    if missing:
        raise RuntimeError(f"report figures missing: {missing}")
    return summary
