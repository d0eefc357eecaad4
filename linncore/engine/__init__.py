"""The dense engine: layers, networks, optimizers, losses and callbacks with Keras 3's semantics."""

from .callbacks import Callback, EarlyStopping, History, LambdaCallback
from .layers import BatchNormalization, Dense, all_activations
from .network import Network, TrainingDivergedWarning
from .optimizers import SGD, Adam

__all__ = [
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
]
