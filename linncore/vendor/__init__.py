"""The vendor workflow: ``LinnModel`` (a drop-in for ``moku.nn``) and the ``.linn`` document."""

from .keras_files import KerasFileError, load_keras, save_keras
from .linn_model import (
    LinnError,
    LinnModel,
    describe_linn,
    get_linn,
    list_activations,
    load_linn,
    save_linn,
)

__all__ = [
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
]
