"""The ablation harness: instrumented training, sweeps, teacher datasets and their histories."""

from .datasets import BaseDataset, LinearTeacherDataset
from .fit_history import FitHistory
from .instrumented import train_instrumented
from .linear_block import LinearBlockModel
from .sweep import SweepResult, sweep

__all__ = [
    "BaseDataset",
    "LinearTeacherDataset",
    "FitHistory",
    "train_instrumented",
    "LinearBlockModel",
    "sweep",
    "SweepResult",
]
