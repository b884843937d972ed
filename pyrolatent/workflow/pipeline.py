"""The demo pipeline as resumable stages.

Each stage writes its outputs atomically and, last, a marker
``stages/<name>.json`` holding its configuration. On a rerun with the same
output folder a stage is skipped when its marker exists, its configuration is
unchanged and every output file exists and parses; otherwise it runs again
(and so do the stages after it, whose markers depend on its outputs).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .io import is_valid_file, load_json, save_json
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


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo. :meth:`preset` gives ``"quick"`` and ``"default"``."""

    n_frames: int = 150
    size: int = 256
    n_particles: int = 60
    transition_frame: int = 90
    head_width_ratio: float = 2.0
    head_contrast: float = 0.9
    train_frames: tuple = (0, 1, 2, 3, 4, 5)
    n_members: int = 4
    filters: int = 8
    baseline_steps: int = 300
    member_steps: int = 30
    window: int = 32
    align_crops: bool = True
    crop_mask: str | None = "auto"
    rvae_epochs: int = 30
    rvae_batch_size: int = 64
    kde_window: int = 3
    nmf_steps: int = 1500
    seed: int = 0

    @classmethod
    def preset(cls, name: str, seed: int = 0) -> DemoConfig:
        if name == "default":
            return cls(seed=seed)
        if name == "quick":
            return cls(
                n_frames=60,
                size=160,
                n_particles=30,
                transition_frame=35,
                train_frames=(0, 1, 2, 3),
                n_members=3,
                baseline_steps=150,
                member_steps=20,
                rvae_epochs=100,  # ~1800 steps: fewer leave the polarity out of z
                rvae_batch_size=64,
                nmf_steps=600,
                seed=seed,
            )
        raise ValueError(f"preset must be 'quick' or 'default', got {name!r}")


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


def run_demo(out="pyrolatent-report", quick: bool = False, seed: int = 0, quiet: bool = False):
    """Run the whole self-assembly chain on a generated movie and write the report.

    Parameters
    ----------
    out : path-like
        Output folder (created); an interrupted run resumes from the finished
        stages.
    quick : bool
        Small movie and short training (the ``--quick`` preset).
    seed : int
    quiet : bool
        Hide progress bars.

    Returns
    -------
    dict
        The report's ``summary.json`` content.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = DemoConfig.preset("quick" if quick else "default", seed=seed)
    c = asdict(cfg)
    c["train_frames"] = list(cfg.train_frames)
    stages = [
        (
            "movie",
            {
                k: c[k]
                for k in (
                    "n_frames",
                    "size",
                    "n_particles",
                    "transition_frame",
                    "head_width_ratio",
                    "head_contrast",
                    "seed",
                )
            },
            lambda: stage_movie(
                out,
                n_frames=cfg.n_frames,
                size=cfg.size,
                n_particles=cfg.n_particles,
                transition_frame=cfg.transition_frame,
                head_width_ratio=cfg.head_width_ratio,
                head_contrast=cfg.head_contrast,
                seed=cfg.seed,
            ),
        ),
        (
            "segment",
            {
                k: c[k]
                for k in (
                    "train_frames",
                    "n_members",
                    "filters",
                    "baseline_steps",
                    "member_steps",
                    "seed",
                )
            },
            lambda: stage_segment(
                out,
                out / "movie.npy",
                masks_path=out / "masks.npy",
                train_frames=cfg.train_frames,
                n_members=cfg.n_members,
                filters=cfg.filters,
                baseline_steps=cfg.baseline_steps,
                member_steps=cfg.member_steps,
                seed=cfg.seed,
                quiet=quiet,
            ),
        ),
        (
            "locate",
            {},
            lambda: stage_locate(out, out / "probability.npy", variance_path=out / "variance.npy"),
        ),
        (
            "crops",
            {k: c[k] for k in ("window", "align_crops", "crop_mask")},
            lambda: stage_crops(
                out,
                out / "movie.npy",
                out / "particles.csv",
                window=cfg.window,
                align=cfg.align_crops,
                mask_half_width=cfg.crop_mask,
            ),
        ),
        (
            "train",
            {k: c[k] for k in ("rvae_epochs", "rvae_batch_size", "seed")},
            lambda: stage_train(
                out,
                out / "crops.npy",
                out / "crops_index.csv",
                epochs=cfg.rvae_epochs,
                batch_size=cfg.rvae_batch_size,
                seed=cfg.seed,
                quiet=quiet,
            ),
        ),
        (
            "analyze",
            {k: c[k] for k in ("kde_window", "nmf_steps", "n_frames", "seed")},
            lambda: stage_analyze(
                out,
                out / "latents.csv",
                out / "particles.csv",
                n_frames=cfg.n_frames,
                kde_window=cfg.kde_window,
                nmf_steps=cfg.nmf_steps,
                seed=cfg.seed,
                quiet=quiet,
            ),
        ),
    ]
    timings = {}
    rerun = False
    bar = tqdm(stages + [("report", {}, None)], desc="demo", disable=quiet, unit="stage")
    for name, config, fn in bar:
        bar.set_description(f"demo: {name}")
        if name == "report":
            break
        if not rerun and stage_is_done(out, name, config):
            timings[name] = load_json(_marker(out, name)).get("seconds", 0.0)
            bar.write(f"[{name}] outputs exist and are valid: skipped") if not quiet else None
            continue
        rerun = True  # later stages depend on these outputs
        t0 = time.perf_counter()
        fn()
        timings[name] = round(time.perf_counter() - t0, 2)
        save_json(_marker(out, name), {"config": config, "seconds": timings[name]})
    t0 = time.perf_counter()
    write_report(out, timings=timings)
    timings["report"] = round(time.perf_counter() - t0, 2)
    bar.close()
    summary = load_json(out / "summary.json")
    missing = [f for f in FIGURES if not is_valid_file(out / "figures" / f)]
    if missing:
        raise RuntimeError(f"report figures missing: {missing}")
    return summary
