"""The self-assembly workflow: in-memory steps, and resumable file stages from a movie to a report.

:mod:`~pyrolatent.workflow.steps` holds the chain as functions on arrays and
tables; :mod:`~pyrolatent.workflow.stages` wraps each step as load -> step ->
save; one frozen config per stage (:mod:`~pyrolatent.workflow.configs`) drives
both, the ``pyrolatent`` command and the demo.
"""

from .afm_stage import stage_preprocess
from .chain import run_chain
from .configs import (
    AnalyzeConfig,
    CropsConfig,
    DemoConfig,
    LocateConfig,
    MovieConfig,
    PreprocessConfig,
    SegmentConfig,
    TrainConfig,
)
from .pipeline import run_demo, stage_is_done
from .report import FIGURES, SUMMARY_KEYS, summarize, write_report
from .stages import (
    OUTPUTS,
    stage_analyze,
    stage_crops,
    stage_locate,
    stage_movie,
    stage_segment,
    stage_train,
)
from .steps import (
    analyze_latents,
    crop_particles,
    encode_crops,
    find_particles,
    segment,
    segmentation_iou,
    train_segmenter,
)

__all__ = [
    "AnalyzeConfig",
    "CropsConfig",
    "DemoConfig",
    "FIGURES",
    "LocateConfig",
    "MovieConfig",
    "OUTPUTS",
    "PreprocessConfig",
    "SUMMARY_KEYS",
    "SegmentConfig",
    "TrainConfig",
    "analyze_latents",
    "crop_particles",
    "encode_crops",
    "find_particles",
    "run_chain",
    "run_demo",
    "segment",
    "segmentation_iou",
    "stage_analyze",
    "stage_crops",
    "stage_is_done",
    "stage_locate",
    "stage_movie",
    "stage_preprocess",
    "stage_segment",
    "stage_train",
    "summarize",
    "train_segmenter",
    "write_report",
]
