"""linncore: a dependency-light engine for small dense neural networks.

Keras-compatible training on a compiled core, fixed-point arithmetic, exact Hessians and
``.linn`` export for the Moku Neural Network instrument.
"""

from . import hessian
from ._backend import backend, get_num_threads, set_num_threads
from ._version import __version__
from .ablation import (
    BaseDataset,
    FitHistory,
    LinearBlockModel,
    LinearTeacherDataset,
    SweepResult,
    sweep,
    train_instrumented,
)
from .ablation.fit_history import HistoryFileError
from .engine import (
    SGD,
    Adam,
    BatchNormalization,
    Callback,
    Dense,
    EarlyStopping,
    History,
    LambdaCallback,
    Network,
    TrainingDivergedWarning,
    all_activations,
)
from .estimators import LinnRegressor
from .evaluation import DeviationReport, EvaluationCallback, evaluate
from .evaluation.report import ReportFileError
from .fixed import (
    INSTRUMENT_ASSUMPTIONS,
    FixedFormat,
    Overflow,
    PrecisionDict,
    QuantizedNetwork,
    RailStats,
    Rounding,
    fixed_matmul,
    quantize,
    rail_stats,
    requantize,
    sat_add,
    sat_mul,
)
from .fixed.precision import PrecisionFileError
from .io import (
    ModelFile,
    ModelFileError,
    export_c_header,
    export_codes,
    from_json,
    load_bundle,
    load_model,
    save_bundle,
    save_model,
    to_json,
)
from .vendor import (
    KerasFileError,
    LinnError,
    LinnModel,
    describe_linn,
    get_linn,
    list_activations,
    load_keras,
    load_linn,
    save_keras,
    save_linn,
)

__all__ = [
    "backend",
    "get_num_threads",
    "set_num_threads",
    # the engine
    "Dense",
    "BatchNormalization",
    "Network",
    "all_activations",
    "SGD",
    "Adam",
    "Callback",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "TrainingDivergedWarning",
    # fixed point
    "FixedFormat",
    "Rounding",
    "Overflow",
    "RailStats",
    "quantize",
    "rail_stats",
    "requantize",
    "sat_add",
    "sat_mul",
    "fixed_matmul",
    "PrecisionDict",
    "QuantizedNetwork",
    "INSTRUMENT_ASSUMPTIONS",
    # second order
    "hessian",
    # the vendor workflow
    "LinnModel",
    "LinnError",
    "get_linn",
    "save_linn",
    "load_linn",
    "describe_linn",
    "list_activations",
    "load_keras",
    "save_keras",
    "KerasFileError",
    # evaluation and files
    "evaluate",
    "DeviationReport",
    "EvaluationCallback",
    "save_model",
    "load_model",
    "save_bundle",
    "load_bundle",
    "to_json",
    "from_json",
    "ModelFile",
    "ModelFileError",
    "export_codes",
    "export_c_header",
    # ablation
    "BaseDataset",
    "LinearTeacherDataset",
    "FitHistory",
    "train_instrumented",
    "LinearBlockModel",
    "sweep",
    "SweepResult",
    # the conventions of other libraries
    "LinnRegressor",
    # errors of untrusted files (each a ValueError naming the file and where in it)
    "PrecisionFileError",
    "ReportFileError",
    "HistoryFileError",
    "__version__",
]
