"""linncore: a dependency-light engine for small dense neural networks.

Keras-compatible training on a compiled core, fixed-point arithmetic, exact Hessians and
``.linn`` export for the Moku Neural Network instrument.
"""
from ._backend import backend
from .callbacks import Callback, EarlyStopping, History, LambdaCallback
from .layers import Dense, all_activations
from .linn import LinnError, LinnModel, describe_linn, get_linn, list_activations, load_linn, save_linn
from .network import Network, TrainingDivergedWarning
from .optimizers import SGD, Adam
from .datasets import BaseDataset, LinearTeacherDataset
from .history import FitHistory
from .ablation import train_instrumented
from .models import LinearBlockModel
from .sweep import sweep, SweepResult

__version__ = "0.1.0"

__all__ = [
    "backend",
    "Callback",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "Dense",
    "all_activations",
    "list_activations",
    "LinnModel",
    "LinnError",
    "get_linn",
    "save_linn",
    "load_linn",
    "describe_linn",
    "Network",
    "TrainingDivergedWarning",
    "SGD",
    "Adam",
    "BaseDataset",
    "LinearTeacherDataset",
    "FitHistory",
    "train_instrumented",
    "LinearBlockModel",
    "sweep",
    "SweepResult",
    "__version__",
]
