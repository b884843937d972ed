"""The self-assembly workflow: resumable stages from a movie to a report."""

from .pipeline import DemoConfig, run_demo, stage_is_done
from .report import FIGURES, SUMMARY_KEYS, write_report
from .stages import (
    OUTPUTS,
    stage_analyze,
    stage_crops,
    stage_locate,
    stage_movie,
    stage_segment,
    stage_train,
)

__all__ = [
    "DemoConfig",
    "FIGURES",
    "OUTPUTS",
    "SUMMARY_KEYS",
    "run_demo",
    "stage_analyze",
    "stage_crops",
    "stage_is_done",
    "stage_locate",
    "stage_movie",
    "stage_segment",
    "stage_train",
    "write_report",
]
