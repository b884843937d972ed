"""One frozen configuration per workflow stage.

The same objects drive the in-memory steps (:mod:`pyrolatent.workflow.steps`),
the file stages (:mod:`pyrolatent.workflow.stages`), the command line (argparse
options map onto their fields) and the demo (:class:`DemoConfig` composes
them); a stage's resume marker stores :func:`config_dict` of its config.
Defaults are those of the ``pyrolatent`` subcommands.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass

__all__ = [
    "MovieConfig",
    "PreprocessConfig",
    "SegmentConfig",
    "LocateConfig",
    "CropsConfig",
    "TrainConfig",
    "AnalyzeConfig",
    "DemoConfig",
    "config_dict",
]


def config_dict(config) -> dict:
    """The config as plain JSON types (tuples become lists), as stored in markers."""
    return json.loads(json.dumps(asdict(config)))


@dataclass(frozen=True)
class MovieConfig:
    """The synthetic self-assembly movie with its planted transition.

    See :func:`pyrolatent.data.synthetic.self_assembly.make_self_assembly_movie`;
    ``head_width_ratio`` and ``head_contrast`` set how visible the rods'
    head/tail polarity is.
    """

    n_frames: int = 150
    size: int = 256
    n_particles: int = 60
    transition_frame: int = 90
    head_width_ratio: float = 1.4
    head_contrast: float = 0.45
    seed: int = 0


#: :class:`PreprocessConfig` ``level`` -> polynomial order of the background surface
LEVEL_ORDERS = {"none": 0, "plane": 1, "quadratic": 2, "cubic": 3}


@dataclass(frozen=True)
class PreprocessConfig:
    """AFM levelling, scan lines and frame flags (:func:`pyrolatent.data.afm.preprocess_afm`).

    ``level`` is the background surface removed from every frame (``"none"``
    removes a constant only); ``scan_lines`` the row-offset method (``"none"``
    skips it); frames whose quality metrics have a robust z-score above
    ``z_threshold`` are flagged (and left out by ``analyze``).
    """

    level: str = "plane"
    scan_lines: str = "median"
    z_threshold: float = 3.5

    def __post_init__(self):
        if self.level not in LEVEL_ORDERS:
            raise ValueError(f"level must be one of {list(LEVEL_ORDERS)}, got {self.level!r}")
        if self.scan_lines not in ("median", "median_diff", "none"):
            raise ValueError(
                f"scan_lines must be 'median', 'median_diff' or 'none', got {self.scan_lines!r}"
            )
        if not self.z_threshold > 0:
            raise ValueError(f"z_threshold must be > 0, got {self.z_threshold}")


@dataclass(frozen=True)
class SegmentConfig:
    """Training of the segmentation ensemble (:func:`pyrolatent.segmentation.train_ensemble`).

    ``train_frames`` are the labelled frames used for training when the labels
    cover the whole movie; the other frames with labels score the pixel IoU.
    Steps are optimiser steps. Without labels the ensemble trains on the
    pseudo-masks of the ``pseudo_frames`` clearest frames
    (:func:`pyrolatent.workflow.segmenter.training_labels`): particles ``polarity``
    ("bright" or "dark") against the background, band-pass background scale
    ``background_sigma`` (pixels, about the particle size).
    """

    train_frames: tuple[int, ...] = (0, 1, 2, 3)
    n_members: int = 3
    filters: int = 8
    baseline_steps: int = 150
    member_steps: int = 20
    patch_size: int = 64
    batch_size: int = 4
    lr: float = 3e-3
    seed: int = 0
    polarity: str = "bright"
    pseudo_frames: int = 6
    background_sigma: float = 10.0

    def __post_init__(self):
        object.__setattr__(self, "train_frames", tuple(int(f) for f in self.train_frames))
        if self.polarity not in ("bright", "dark"):
            raise ValueError(f"polarity must be 'bright' or 'dark', got {self.polarity!r}")
        if int(self.pseudo_frames) < 1:
            raise ValueError(f"pseudo_frames must be >= 1, got {self.pseudo_frames}")
        if not float(self.background_sigma) > 1:  # pseudo-masks smooth noise over 1 pixel
            raise ValueError(
                f"background_sigma must be > 1 pixel (about the particle size), "
                f"got {self.background_sigma}"
            )


@dataclass(frozen=True)
class LocateConfig:
    """Particles from probability maps (:func:`pyrolatent.segmentation.locate`)."""

    threshold: float = 0.5
    min_area: float = 15


@dataclass(frozen=True)
class CropsConfig:
    """Crops around the particles (:func:`pyrolatent.data.crops.aligned_crops`).

    ``window`` is the crop edge in pixels; ``align`` pre-aligns each crop by
    its ellipse axis; ``mask_half_width`` (pixels, ``"auto"`` or None, only
    with ``align``) keeps a band around the axis.
    """

    window: int = 32
    align: bool = False
    mask_half_width: float | str | None = None

    def __post_init__(self):
        if self.mask_half_width is not None and not self.align:
            raise ValueError(
                "mask_half_width needs align=True (the band follows the particle axis)"
            )
        if self.mask_half_width not in (None, "auto"):
            object.__setattr__(self, "mask_half_width", float(self.mask_half_width))


@dataclass(frozen=True)
class TrainConfig:
    """The rVAE on the crops (:class:`pyrolatent.estimators.rvae.RVAE`, Bernoulli likelihood).

    ``epochs`` is the number of epochs one training call runs (more epochs
    when it continues a checkpoint). ``clip_norm`` clips the global gradient
    norm of every step (0: no clipping): without it, the rVAE on the 8,665 crops
    of AFMReader's sample movie diverged at epoch 29 of 30 (loss 141 -> 240).
    ``check_seed`` trains a second rVAE with seed ``seed + 1`` and compares the
    angles and the transition they give (:mod:`pyrolatent.workflow.seed_check`;
    twice the training time, so off only when that time is short).
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    latent_dim: int = 2
    decoder: str = "warp"
    seed: int = 0
    clip_norm: float = 10.0
    check_seed: bool = True


@dataclass(frozen=True)
class AnalyzeConfig:
    """KDE(latent, t), NMF, transition, angle peaks and trajectories.

    ``kde_window`` frames are pooled per KDE row; ``nmf_steps`` are NMF
    optimiser steps; ``search_radius`` (pixels) and ``max_gap`` (frames)
    configure the trajectory linking; angle peaks are counted ``peak_margin``
    frames away from the transition. ``exclude_border`` leaves particles cut by
    the frame edge (``touches_border``) out of everything but the trajectories
    (:func:`pyrolatent.workflow.exclusion.drop_border_particles`).
    """

    kde_window: int = 3
    n_components: int = 2
    nmf_method: str = "svi"
    nmf_steps: int = 1500
    search_radius: float = 21.0
    max_gap: int = 2
    peak_margin: int = 3
    seed: int = 0
    exclude_border: bool = True


@dataclass(frozen=True)
class DemoConfig:
    """The demo: one config per stage. :meth:`preset` gives ``"quick"`` and ``"default"``.

    ``label_free`` trains the segmentation on pseudo-masks of the clearest frames
    instead of the movie's masks (:func:`pyrolatent.workflow.segmenter.training_labels`);
    the masks then only score the result.
    """

    movie: MovieConfig = field(
        default_factory=lambda: MovieConfig(head_width_ratio=2.0, head_contrast=0.9)
    )
    segment: SegmentConfig = field(
        default_factory=lambda: SegmentConfig(
            train_frames=(0, 1, 2, 3, 4, 5),
            n_members=4,
            baseline_steps=300,
            member_steps=30,
            background_sigma=6.0,  # the rods' size: pseudo-masks closest to the truth
        )
    )
    locate: LocateConfig = field(default_factory=LocateConfig)
    crops: CropsConfig = field(
        default_factory=lambda: CropsConfig(align=True, mask_half_width="auto")
    )
    train: TrainConfig = field(default_factory=TrainConfig)
    analyze: AnalyzeConfig = field(default_factory=AnalyzeConfig)
    label_free: bool = False

    @classmethod
    def preset(cls, name: str, seed: int = 0) -> DemoConfig:
        """``"default"`` (150 frames of 256 x 256) or ``"quick"`` (60 frames of 160 x 160)."""
        if name == "default":
            cfg = cls()
        elif name == "quick":
            cfg = cls(
                movie=MovieConfig(
                    n_frames=60,
                    size=160,
                    n_particles=30,
                    transition_frame=35,
                    head_width_ratio=2.0,
                    head_contrast=0.9,
                ),
                segment=SegmentConfig(
                    n_members=3, baseline_steps=150, member_steps=20, background_sigma=6.0
                ),
                # ~1800 steps: fewer leave the polarity out of z
                train=TrainConfig(epochs=100, batch_size=64),
                analyze=AnalyzeConfig(nmf_steps=600),
            )
        else:
            raise ValueError(f"preset must be 'quick' or 'default', got {name!r}")
        return cfg.with_seed(seed)

    def with_seed(self, seed: int) -> DemoConfig:
        """The same config with ``seed`` in every stage that draws random numbers."""
        parts = {}
        for f in fields(self):
            part = getattr(self, f.name)
            if is_dataclass(part) and any(g.name == "seed" for g in fields(part)):
                part = type(part)(**{**asdict(part), "seed": seed})
            parts[f.name] = part
        return DemoConfig(**parts)
