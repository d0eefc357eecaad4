"""linncore: a dependency-light engine for small dense neural networks.

Keras-compatible training on a compiled core, fixed-point arithmetic, exact Hessians and
``.linn`` export for the Moku Neural Network instrument.
"""
from ._backend import backend
from .callbacks import Callback, EarlyStopping, History, LambdaCallback
from .evaluation import DeviationReport, EvaluationCallback, evaluate
from .files import (ModelFile, ModelFileError, export_c_header, export_codes, load_bundle, load_model,
                    save_bundle, save_model)
from .layers import Dense, list_activations
from .network import Network, TrainingDivergedWarning
from .optimizers import SGD, Adam

__version__ = "0.1.0"

__all__ = [
    "backend",
    "Callback",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "Dense",
    "list_activations",
    "Network",
    "TrainingDivergedWarning",
    "SGD",
    "Adam",
    "evaluate",
    "DeviationReport",
    "EvaluationCallback",
    "save_model",
    "load_model",
    "save_bundle",
    "load_bundle",
    "ModelFile",
    "ModelFileError",
    "export_codes",
    "export_c_header",
    "__version__",
]
