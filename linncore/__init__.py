"""linncore: a dependency-light engine for small dense neural networks.

Keras-compatible training on a compiled core, fixed-point arithmetic, exact Hessians and
``.linn`` export for the Moku Neural Network instrument.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._backend import backend, fma_available, get_fma, get_num_threads, set_fma, set_num_threads
from ._version import __version__
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

# Imported on first use, so that ``from linncore import LinnModel`` (the vendor's one-import
# migration) does not load them: the curvature, the ablation loop with its process pool, the
# scikit-learn estimator and the deviation reports are about half of the import's time.  The
# modules above are imported eagerly because they register what the layers below them read
# (the precision reader, the LinnModel type, the .linn reader).  Each public name maps to its
# module (a subpackage maps to itself, so ``linncore.ablation`` still works after a bare
# ``import linncore``); the block under TYPE_CHECKING says the same to type checkers.
_LAZY = {
    "ablation": ".ablation",
    "curvature": ".curvature",
    "estimators": ".estimators",
    "evaluation": ".evaluation",
    "hessian": ".hessian",
    "BaseDataset": ".ablation",
    "FitHistory": ".ablation",
    "LinearBlockModel": ".ablation",
    "LinearTeacherDataset": ".ablation",
    "SweepResult": ".ablation",
    "sweep": ".ablation",
    "train_instrumented": ".ablation",
    "HistoryFileError": ".ablation.fit_history",
    "LinnRegressor": ".estimators",
    "DeviationReport": ".evaluation",
    "EvaluationCallback": ".evaluation",
    "evaluate": ".evaluation",
    "ReportFileError": ".evaluation.report",
}

if TYPE_CHECKING:
    from . import hessian
    from .ablation import (
        BaseDataset,
        FitHistory,
        LinearBlockModel,
        LinearTeacherDataset,
        SweepResult,
        train_instrumented,
    )
    from .ablation.fit_history import HistoryFileError
    from .ablation.sweep import sweep
    from .estimators import LinnRegressor
    from .evaluation import DeviationReport, EvaluationCallback, evaluate
    from .evaluation.report import ReportFileError


def __getattr__(name: str) -> Any:
    """A public name of a module imported on first use (see ``_LAZY``)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'linncore' has no attribute {name!r}")
    loaded = importlib.import_module(module, __name__)
    value = loaded if module == "." + name else getattr(loaded, name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "backend",
    "get_num_threads",
    "set_num_threads",
    "fma_available",
    "get_fma",
    "set_fma",
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
