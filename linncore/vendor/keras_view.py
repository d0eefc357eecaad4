"""The Keras-shaped view of a :class:`~linncore.Network` that vendor scripts reach into.

The vendor's tutorials use ``linn_model.model`` as the Keras model it is there:
``model.layers[i].get_weights()`` / ``set_weights(...)``, ``model.summary()``,
``model.predict(x)``, ``model.input_shape``, ``model.save("model.keras")``.
:class:`KerasModelView` offers that surface on NumPy arrays.  Its layer list is the one
Keras builds for a ``LinnModel``: an input layer at index 0, then for each dense layer the
``Dense`` followed by its output-clip layer.  The views hold no data of their own: reading
and writing go to the network's parameters.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._util.validate import as_float_array, check_finite, flag
from ..engine.layers import Dense

__all__ = ["KerasModelView", "InputLayerView", "DenseView", "OutputClipView"]


def _keras_name(base: str, k: int) -> str:
    return base if k == 0 else f"{base}_{k}"


class _LayerView:
    name: str = ""
    trainable = True

    def get_weights(self) -> list[np.ndarray]:
        return []

    def set_weights(self, weights: Sequence[Any]) -> None:
        if len(weights) != 0:
            raise ValueError(
                f"weights: layer {self.name!r} has no weights; expected an empty list, got "
                f"{len(weights)} array(s)"
            )

    @property
    def weights(self) -> list[np.ndarray]:
        return self.get_weights()

    def count_params(self) -> int:
        return int(sum(w.size for w in self.get_weights()))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


class InputLayerView(_LayerView):
    """The input layer (no weights)."""

    def __init__(self, width: int) -> None:
        self.name = "input_layer"
        self.input_shape = self.output_shape = (None, width)


class OutputClipView(_LayerView):
    """The output-clip layer after each dense layer: ``clip(x, -clip_value, clip_value)``."""

    clip_value = 1.0

    def __init__(self, k: int, width: int) -> None:
        self.name = _keras_name("output_clip_layer", k)
        self.input_shape = self.output_shape = (None, width)


class DenseView(_LayerView):
    """A dense layer: ``get_weights()`` gives ``[kernel (n_in, n_out), bias]`` (copies);
    ``set_weights`` writes into the network."""

    def __init__(self, layer: Dense, k: int) -> None:
        self._layer = layer
        self.name = _keras_name("dense", k)
        self.units = layer.size_out
        self.activation = layer.activation
        self.input_shape = (None, layer.size_in)
        self.output_shape = (None, layer.size_out)

    def get_weights(self) -> list[np.ndarray]:
        out = [self._layer.weight.copy()]
        bias = self._layer.bias  # None exactly when the layer has no bias
        if bias is not None:
            out.append(bias.copy())
        return out

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set ``[kernel (n_in, n_out), bias (n_out,)]``; shapes and finiteness are checked
        before anything changes."""
        names = ["kernel", "bias"] if self._layer.has_bias else ["kernel"]
        if (
            isinstance(weights, np.ndarray)
            or not isinstance(weights, Sequence)
            or len(weights) != len(names)
        ):
            got = (
                f"{len(weights)} item(s)"
                if isinstance(weights, Sequence)
                else type(weights).__name__
            )
            raise ValueError(
                f"weights: layer {self.name!r} expects [{', '.join(names)}], got {got}"
            )
        bias = self._layer.bias
        targets = [self._layer.weight] + ([bias] if bias is not None else [])
        checked = []
        for name, target, value in zip(names, targets, weights):
            arr = as_float_array(value, f"{self.name} {name}")
            if arr.shape != target.shape:
                raise ValueError(
                    f"{self.name} {name}: expected shape {target.shape}, got {arr.shape}"
                )
            check_finite(arr, f"{self.name} {name}")
            checked.append(arr)
        for target, arr in zip(targets, checked):
            target[...] = arr


class KerasModelView:
    """A Keras-model-shaped view of a network (see the module docstring).

    Examples
    --------
    >>> from linncore import Network, Dense
    >>> view = KerasModelView(Network([Dense((2, 3), "relu", seed=0), Dense((3, 1), seed=1)]))
    >>> [layer.name for layer in view.layers]
    ['input_layer', 'dense', 'output_clip_layer', 'dense_1', 'output_clip_layer_1']
    >>> view.layers[1].set_weights([np.ones((2, 3)), np.zeros(3)])
    >>> view.layers[3].set_weights([np.full((3, 1), 0.5), np.zeros(1)])
    >>> view.predict(np.array([[0.25, 0.25]])).tolist()
    [[0.75]]
    """

    def __init__(self, network: Any, owner: Any = None) -> None:
        self.network = network
        self._owner = owner
        layers: list[_LayerView] = [InputLayerView(network.input_size)]
        for k, layer in enumerate(network.layers):
            layers.append(DenseView(layer, k))
            layers.append(OutputClipView(k, layer.size_out))
        self.layers = layers

    @property
    def input_shape(self) -> tuple[None, int]:
        return (None, self.network.input_size)

    @property
    def output_shape(self) -> tuple[None, int]:
        return (None, self.network.output_size)

    @property
    def stop_training(self) -> bool:
        return self.network.stop_training

    @stop_training.setter
    def stop_training(self, value: bool) -> None:
        self.network.stop_training = bool(value)

    def get_layer(self, name: str) -> _LayerView:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"name: no layer named {name!r}; layers are {[l.name for l in self.layers]}"
        )

    def get_weights(self) -> list[np.ndarray]:
        """``[kernel_0, bias_0, kernel_1, ...]`` (Keras layout, copies)."""
        return self.network.get_weights()

    def set_weights(self, weights: Sequence[Any]) -> None:
        self.network.set_weights(weights)

    def count_params(self) -> int:
        return self.network.n_params

    def predict(
        self, x: Any, batch_size: int | None = None, verbose: Any = "auto", **kwargs: Any
    ) -> np.ndarray:
        """The network's outputs on ``x`` as given (no data scaling: the raw model)."""
        return self.network.predict(x)

    __call__ = predict

    def save(self, filepath: str | os.PathLike, overwrite: bool = True) -> None:
        """Write the model as a Keras file, as Keras's ``model.save(filepath)`` does.

        ``filepath`` ends in ``.keras`` (Keras 3's format) or ``.h5`` (legacy); the file is
        :func:`~linncore.save_keras`'s, which plain Keras loads without custom objects.  As
        with Keras, the training scaling is not part of it (a warning says so when the
        owner's data was scaled).  With ``overwrite=False`` an existing file is an error
        (Keras would ask on the terminal).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from linncore import LinnModel, load_keras
        >>> lm = LinnModel()
        >>> lm.set_training_data(np.zeros((4, 2)), np.zeros((4, 1)), scale=False)
        >>> lm.construct_model([(3, "relu"), (1, "linear")], seed=0)
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.keras"
        >>> lm.model.save(path)
        >>> load_keras(path).get_weights()[0].shape
        (2, 3)
        """
        from . import keras_files  # it builds on this module

        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(
                f"filepath: expected a path ending in .keras or .h5, got {type(filepath).__name__}"
            )
        suffix = Path(filepath).suffix
        if suffix not in (".keras", ".h5"):
            raise ValueError(
                "filepath: expected a name ending in '.keras' (Keras 3's format) or '.h5' "
                f"(legacy), got {os.fspath(filepath)!r:.80}"
            )
        if not flag(overwrite, "overwrite") and Path(filepath).exists():
            raise FileExistsError(
                f"filepath: {os.fspath(filepath)!r:.80} exists and overwrite=False"
            )
        keras_files.save_keras(self.network, filepath)
        if self._owner is not None and self._owner.scaling() is not None:
            keras_files.warn_scaling_left_out(stacklevel=2)

    def summary(self, *args: Any, **kwargs: Any) -> None:
        """Print the owner's summary or the network's.

        A ``LinnModel``'s summary includes the budget and the scaling.
        """
        if self._owner is not None:
            self._owner.summary()
        else:
            self.network.summary()

    def __repr__(self) -> str:
        return f"<KerasModelView of {self.network!r}>"
