"""The vendor workflow without TensorFlow: :class:`LinnModel` and ``.linn`` documents.

A script written for the vendor's ``moku.nn`` runs unchanged once its import line reads
``from linncore import LinnModel, save_linn``: the same methods and defaults, the same
training behaviour (Keras 3 rules, float32), and ``.linn`` files the instrument accepts.
Where the vendor path goes wrong linncore does better (see :doc:`/linn_format`):
constant columns are an error (or map to 0 on request), ``validation_data`` is scaled like
the training data, ``(width,)`` layers are accepted, ``es_config`` takes
``restore_best_weights`` as a synonym and warns about unknown keys, and out-of-range
parameters are refused on export unless ``clip=True``.

Examples
--------
>>> import numpy as np
>>> x = np.linspace(0.0, 1.0, 50)[:, None]  # 50 samples of one input
>>> lm = LinnModel()
>>> lm.set_training_data(x, 3.0 * x + 1.0)
>>> lm.construct_model([(4, "tanh"), (1,)], seed=0)
>>> history = lm.fit_model(epochs=3, verbose=0, seed=0)
>>> len(history.history["loss"])
3
>>> doc = get_linn(lm, input_channels=1, output_channels=1)
>>> [layer["activation"] for layer in doc["layers"]]
['tanh', 'linear']
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._util import untrusted as _untrusted
from .._util.atomic import atomic_write
from .._util.validate import (
    as_float_array,
    as_samples,
    check_finite,
    choice,
    finite_float,
    flag,
    non_negative_int,
    positive_int,
    seed_value,
)
from ..engine import losses as _losses
from ..engine import optimizers as _optimizers
from ..engine.callbacks import EarlyStopping, History
from ..engine.layers import Dense
from ..engine.network import Network
from ..fixed import quantized as _quantized
from ..io import model_files as _model_files
from .keras_view import KerasModelView
from .linn_document import (
    INSTRUMENT_ACTIVATIONS,
    MAX_COLUMN_DEPTH,
    MAX_LAYERS,
    MAX_PARALLEL_CHANNELS,
    LinnError,
    LinnLayer,
    build_document,
    column_depth,
    describe,
    device_neuron_limit,
    parse_document,
)

__all__ = [
    "LinnModel",
    "LinnError",
    "list_activations",
    "get_linn",
    "save_linn",
    "load_linn",
    "describe_linn",
    "read_linn",
    "budget_text",
]

#: Largest ``.linn`` file read (bytes); the largest valid document is about 1.3 MB.
MAX_FILE_BYTES = 8 * 1024 * 1024
#: The deepest JSON nesting a .linn file is read with (a valid one nests 4 deep).
MAX_JSON_DEPTH = 16


def list_activations() -> list[str]:
    """The activations the Moku Neural Network instrument runs (the vendor's list).

    Examples
    --------
    >>> list_activations()
    ['relu', 'tanh', 'sigmoid', 'softsign', 'linear']
    """
    return list(INSTRUMENT_ACTIVATIONS)


# -- scaling --------------------------------------------------------------------------------
class _Scaling:
    """Per-column affine map of data onto ``[-1, 1]``: ``2 * (v - lo) / (hi - lo) - 1``.

    Columns with ``hi == lo`` (allowed only on request) map to 0 and back to ``lo``."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self.lo, self.hi = lo, hi
        self.constant = hi == lo
        self.span = np.where(self.constant, 1.0, hi - lo)

    def forward(self, v: np.ndarray) -> np.ndarray:
        out = 2.0 * (v - self.lo) / self.span - 1.0
        # without constant columns np.where would only copy: skipped (predict runs per sample)
        return np.where(self.constant, 0.0, out) if self.constant.any() else out

    def inverse(self, s: np.ndarray) -> np.ndarray:
        out = (s + 1.0) / 2.0 * self.span + self.lo
        return np.where(self.constant, self.lo, out) if self.constant.any() else out


def _as_rows(value: Any, name: str) -> tuple[np.ndarray, bool]:
    """Training data as ``(samples, columns)``, and whether it came 1-D.

    As the vendor reads it, the width is the last axis: a 1-D array is one sample whose
    length is the number of columns."""
    arr = as_float_array(value, name)
    one_d = arr.ndim == 1
    if one_d:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name}: expected a non-empty 2-D array (samples, columns) or a 1-D "
            f"array (one sample), got shape {arr.shape}"
        )
    check_finite(arr, name)
    return arr, one_d


def _scaling_for(
    data: np.ndarray,
    boundary: Any,
    name: str,
    boundary_name: str,
    constant_columns: str,
    whole: bool = False,
) -> _Scaling:
    """The scaling of each column; with ``whole`` (1-D data, one sample) and no boundary, the
    vector's own min and max for every column, as the vendor computes them."""
    n_cols = data.shape[1]
    if boundary is None and whole:
        lo, hi = np.full(n_cols, data.min()), np.full(n_cols, data.max())
    elif boundary is None:
        lo, hi = data.min(axis=0), data.max(axis=0)
    else:
        if not isinstance(boundary, (tuple, list)) or len(boundary) != 2:
            raise ValueError(
                f"{boundary_name}: expected a pair (lower_list, upper_list), got {boundary!r:.80}"
            )
        lo = as_float_array(boundary[0], f"{boundary_name}[0] (lower)").reshape(-1)
        hi = as_float_array(boundary[1], f"{boundary_name}[1] (upper)").reshape(-1)
        for arr, part in ((lo, "[0] (lower)"), (hi, "[1] (upper)")):
            if arr.shape != (n_cols,):
                raise ValueError(
                    f"{boundary_name}{part}: expected {n_cols} value(s), one per column of {name}, "
                    f"got {arr.shape[0]}"
                )
            check_finite(arr, boundary_name + part)
        below = np.flatnonzero(hi < lo)
        if below.size:
            c = int(below[0])
            raise ValueError(
                f"{boundary_name}: column {c} has upper {float(hi[c]):g} below lower "
                f"{float(lo[c]):g}"
            )
    equal = np.flatnonzero(hi == lo)
    if equal.size and constant_columns != "zero":
        c = int(equal[0])
        what = (
            "is constant (every value"
            if boundary is None
            else f"has equal boundaries ({boundary_name}"
        )
        raise ValueError(
            f"{name}: column {c} {what} {float(lo[c]):g}), so its scaling 2*(v - lo)/(hi - lo) - 1 "
            "divides by zero; "
            f"give {boundary_name}, drop the column, or pass constant_columns='zero' to map it to 0"
        )
    return _Scaling(lo.astype(np.float64), hi.astype(np.float64))


def _network_of(model: Any) -> Network:
    """The :class:`Network` behind a LinnModel, its ``.model`` view or a Network."""
    if isinstance(model, LinnModel):
        if model.network is None:
            raise ValueError("model: this LinnModel has no network yet; call construct_model first")
        return model.network
    if isinstance(model, KerasModelView):
        return model.network
    if isinstance(model, Network):
        return model
    raise TypeError(
        f"model: expected a LinnModel, its .model or a Network, got {type(model).__name__}"
    )


# -- LinnModel ------------------------------------------------------------------------------
class LinnModel:
    """Build, train and use a network for the Moku Neural Network instrument.

    The vendor's workflow: :meth:`set_training_data` (scales each column onto ``[-1, 1]``),
    :meth:`construct_model` (dense layers with clipped weights and outputs),
    :meth:`fit_model`, :meth:`predict` (scales inputs and unscales outputs), then
    :func:`save_linn`.

    Attributes
    ----------
    model : KerasModelView or None
        The Keras-shaped view of the network (``.layers``, ``.summary()``, ``.predict``,
        ``.get_weights()``, ...), set by :meth:`construct_model`.
    network : Network or None
        The network itself.
    training_inputs, training_outputs : ndarray or None
        The training data as trained on (scaled when ``scale=True``).
    model_definition : list of (int, str) or None
        The layers as ``(width, activation)``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(-1, 1, (64, 3))
    >>> lm = LinnModel()
    >>> lm.set_training_data(X, X.mean(axis=1, keepdims=True), scale=False)
    >>> lm.construct_model([(1, "linear")], seed=0)
    >>> lm.model.layers[1].get_weights()[0].shape
    (3, 1)
    """

    def __init__(self) -> None:
        self.model: KerasModelView | None = None
        self.network: Network | None = None
        self.training_inputs: np.ndarray | None = None
        self.training_outputs: np.ndarray | None = None
        self._input_transform_args: _Scaling | None = None
        self._output_transform_args: _Scaling | None = None
        self.model_definition: list[tuple[int, str]] | None = None
        self._scaled = False
        self._optimizer: Any = None
        self._loss = "mse"

    def __repr__(self) -> str:
        return (
            f"LinnModel({self.network!r})"
            if self.network is not None
            else "LinnModel(not constructed)"
        )

    @classmethod
    def from_network(cls, network: Network, scaling: dict[str, Any] | None = None) -> LinnModel:
        """A LinnModel around a trained network, e.g. one read back from a model file.

        Parameters
        ----------
        network : Network
        scaling : dict, optional
            The training scaling, ``{"inputs": {"lo": [...], "hi": [...]}, "outputs": {...}}``
            (the form :meth:`scaling` gives and model files store); without it ``predict``
            works in the instrument's [-1, 1] units.
        """
        if not isinstance(network, Network):
            raise TypeError(f"network: expected a Network, got {type(network).__name__}")
        lm = cls()
        lm.network = network
        lm.model = KerasModelView(network, owner=lm)
        lm._optimizer = _optimizers.get("adam")
        if scaling:
            for part, n, attr in (
                ("inputs", network.input_size, "_input_transform_args"),
                ("outputs", network.output_size, "_output_transform_args"),
            ):
                lo = (
                    np.asarray(scaling[part]["lo"], dtype=np.float64)
                    if part in scaling
                    else -np.ones(n)
                )
                hi = (
                    np.asarray(scaling[part]["hi"], dtype=np.float64)
                    if part in scaling
                    else np.ones(n)
                )
                setattr(lm, attr, _Scaling(lo, hi))
            lm._scaled = True
        return lm

    def _scalings(self) -> tuple[_Scaling, _Scaling] | None:
        """The input and output scalings, or None when the data was not scaled (both are set
        together, by set_training_data or from_network)."""
        sx, sy = self._input_transform_args, self._output_transform_args
        if not self._scaled or sx is None or sy is None:
            return None
        return sx, sy

    def scaling(self) -> dict[str, Any] | None:
        """The training scaling as plain lists (None when the data was not scaled)."""
        pair = self._scalings()
        if pair is None:
            return None
        return {
            part: {"lo": s.lo.tolist(), "hi": s.hi.tolist()}
            for part, s in zip(("inputs", "outputs"), pair)
        }

    # -- data ------------------------------------------------------------------------------
    def set_training_data(
        self,
        training_inputs: Any,
        training_outputs: Any,
        scale: bool = True,
        input_data_boundary: Any = None,
        output_data_boundary: Any = None,
        constant_columns: str = "error",
    ) -> None:
        """Set the training data and, with ``scale=True``, map each column onto ``[-1, 1]``.

        Parameters
        ----------
        training_inputs, training_outputs : array_like
            ``(samples, columns)``, finite.  As in the vendor's ``moku.nn``, the width is the
            last axis: a 1-D array of ``n`` values is **one sample of** ``n`` **columns** (the
            Identity_NN tutorial trains on ``data.shape == (100,)``); pass ``x[:, None]`` for
            ``n`` samples of one column.  With ``scale=True`` and no boundary, 1-D data is
            scaled by its own min and max, the same for every column (as the vendor does).
        scale : bool
            Map every column with ``2 * (v - lo) / (hi - lo) - 1`` (default True).
        input_data_boundary, output_data_boundary : (lower_list, upper_list), optional
            ``lo`` and ``hi`` per column; by default the columns' min and max.
        constant_columns : {"error", "zero"}
            A column with ``hi == lo`` cannot be scaled: an error (default) or, with
            ``"zero"``, the column maps to 0 (and an output column back to its value).

        Examples
        --------
        >>> lm = LinnModel()
        >>> lm.set_training_data([[0.0], [5.0], [10.0]], [[1.0], [2.0], [3.0]])
        >>> lm.training_inputs.ravel().tolist()
        [-1.0, 0.0, 1.0]
        >>> lm.set_training_data(np.zeros(100), np.zeros(100), scale=False)  # one sample of 100
        >>> lm.training_inputs.shape
        (1, 100)
        """
        constant_columns = choice(constant_columns, ["error", "zero"], "constant_columns")
        # checked before anything changes: a refused flag leaves the model as it was
        scale = flag(scale, "scale")
        x, x_1d = _as_rows(training_inputs, "training_inputs")
        y, y_1d = _as_rows(training_outputs, "training_outputs")
        if x.shape[0] != y.shape[0]:
            hint = ""
            for arr, one_d, nm in ((x, x_1d, "training_inputs"), (y, y_1d, "training_outputs")):
                if one_d:
                    hint = (
                        f"; a 1-D {nm} is one sample of {arr.shape[1]} columns (the width is "
                        f"the last axis, as in the vendor's moku.nn): pass "
                        f"{nm}.reshape(-1, 1) for {arr.shape[1]} samples of one column"
                    )
            raise ValueError(
                f"training_outputs: expected {x.shape[0]} sample(s) (as many as "
                f"training_inputs), got {y.shape[0]}{hint}"
            )
        if self.network is not None and (x.shape[1], y.shape[1]) != (
            self.network.input_size,
            self.network.output_size,
        ):
            raise ValueError(
                "training_inputs/training_outputs: the constructed model takes "
                f"{self.network.input_size} "
                f"input and {self.network.output_size} output column(s), got {x.shape[1]} and "
                f"{y.shape[1]}"
            )
        sx: _Scaling | None
        sy: _Scaling | None
        if scale:
            sx = _scaling_for(
                x,
                input_data_boundary,
                "training_inputs",
                "input_data_boundary",
                constant_columns,
                whole=x_1d,
            )
            sy = _scaling_for(
                y,
                output_data_boundary,
                "training_outputs",
                "output_data_boundary",
                constant_columns,
                whole=y_1d,
            )
            x, y = sx.forward(x), sy.forward(y)
        else:
            if input_data_boundary is not None or output_data_boundary is not None:
                raise ValueError(
                    "input_data_boundary/output_data_boundary: boundaries only apply with "
                    "scale=True"
                )
            sx = sy = None
            if np.abs(y).max() > 1.0:
                warnings.warn(
                    "training_outputs: values outside [-1, 1] with scale=False; every layer's "
                    "output is "
                    "clipped to [-1, 1], so the network cannot reach them",
                    UserWarning,
                    stacklevel=2,
                )
        self.training_inputs, self.training_outputs = x, y
        self._input_transform_args, self._output_transform_args = sx, sy
        self._scaled = scale

    def _transform(self, data_array: np.ndarray, is_input: bool) -> np.ndarray:
        s = self._input_transform_args if is_input else self._output_transform_args
        return data_array if s is None else s.forward(data_array)

    def _inverse_transform(self, data_array: np.ndarray, is_input: bool) -> np.ndarray:
        s = self._input_transform_args if is_input else self._output_transform_args
        return data_array if s is None else s.inverse(data_array)

    # -- model -----------------------------------------------------------------------------
    def construct_model(
        self,
        layer_definition: Sequence[Any],
        show_summary: bool = False,
        optimizer: Any = "adam",
        loss: str = "mse",
        metrics: Sequence[str] = (),
        *,
        seed: int | None = None,
        dtype: Any = "float32",
    ) -> None:
        """Build the network: one dense layer per entry, weights and outputs clipped to ``[-1, 1]``.

        The input width is the training inputs' last axis (a 1-D array of ``n`` values gives
        ``n`` inputs, as in the vendor's ``moku.nn``).

        Parameters
        ----------
        layer_definition : list of (width, activation) or (width,)
            ``activation`` one of :func:`list_activations`; ``(width,)`` is linear.  The
            last width must equal the number of output columns.
        show_summary : bool
            Print :meth:`summary` after building.
        optimizer : str or Optimizer
            ``"adam"`` (default) or ``"sgd"`` with Keras defaults, or an optimizer object;
            its state carries over between :meth:`fit_model` calls, as in Keras.
        loss : str
            ``"mse"`` (default), ``"mae"`` or ``"half_mse"``.
        metrics : sequence of str
            Must be empty: extra metrics are not computed (yet).
        seed : int, optional
            Seed of the Glorot-uniform kernel initialiser (biases start at zero).
        dtype : {"float32", "float64"}
            Training precision; float32 (default) as Keras.
        """
        if self.training_inputs is None or self.training_outputs is None:
            raise ValueError(
                "construct_model: call set_training_data first; the input width comes from the "
                "training data"
            )
        if len(tuple(metrics)) != 0:
            raise ValueError(
                "metrics: extra metrics are not supported; expected (), got "
                f"{_untrusted.short(metrics)} "
                "(history holds 'loss' and 'val_loss')"
            )
        if (
            isinstance(layer_definition, (str, bytes))
            or not isinstance(layer_definition, Sequence)
            or not layer_definition
        ):
            raise ValueError(
                "layer_definition: expected a non-empty list of (width, activation) tuples, got "
                f"{layer_definition!r:.80}"
            )
        definition: list[tuple[int, str]] = []
        for i, entry in enumerate(layer_definition):
            if not isinstance(entry, (tuple, list)) or len(entry) not in (1, 2):
                raise ValueError(
                    f"layer_definition[{i}]: expected (width, activation) or (width,), got "
                    f"{_untrusted.short(entry)}"
                )
            width = positive_int(entry[0], f"layer_definition[{i}] width")
            act = (
                choice(entry[1], list(INSTRUMENT_ACTIVATIONS), f"layer_definition[{i}] activation")
                if len(entry) == 2
                else "linear"
            )
            definition.append((width, act))
        n_out = self.training_outputs.shape[1]
        if definition[-1][0] != n_out:
            raise ValueError(
                f"layer_definition[{len(definition) - 1}]: the last layer must have {n_out} "
                "neuron(s), "
                f"one per training output column, got {definition[-1][0]}"
            )
        loss = _losses.get(loss, "loss")
        opt = _optimizers.get(optimizer)
        rng = np.random.default_rng(seed_value(seed))
        widths = [self.training_inputs.shape[1]] + [w for w, _ in definition]
        layers = [Dense((widths[i], w), act, seed=rng) for i, (w, act) in enumerate(definition)]
        self.network = Network(layers, clip=True, dtype=dtype)
        self.model = KerasModelView(self.network, owner=self)
        self.model_definition = definition
        self._optimizer, self._loss = opt, loss
        if show_summary:
            self.summary()

    def _require_network(self) -> Network:
        if self.network is None:
            raise ValueError("no model yet: call construct_model first")
        return self.network

    def _require_view(self) -> KerasModelView:
        if self.model is None:
            raise ValueError("no model yet: call construct_model first")
        return self.model

    def get_weights(self) -> list[np.ndarray]:
        """``[kernel_0 (n_in, n_out), bias_0, kernel_1, ...]`` (Keras layout, copies)."""
        return self._require_network().get_weights()

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set every parameter from a list in Keras layout (see :meth:`get_weights`)."""
        self._require_network().set_weights(weights)

    # -- training --------------------------------------------------------------------------
    _FIT_KWARGS = ("batch_size", "shuffle", "verbose", "callbacks", "seed")

    @staticmethod
    def _early_stopping(es_config: Any) -> EarlyStopping:
        if not isinstance(es_config, dict):
            raise TypeError(
                f"es_config: expected a dict such as {{'patience': 10}}, got "
                f"{type(es_config).__name__}"
            )
        known = {"monitor", "patience", "restore", "restore_best_weights"}
        # a key set to None means its default, as the vendor reads es_config
        es_config = {k: v for k, v in es_config.items() if v is not None}
        unknown = sorted(set(es_config) - known)
        if unknown:
            warnings.warn(
                f"es_config: ignoring unknown key(s) {unknown}; known keys are {sorted(known)}",
                UserWarning,
                stacklevel=3,
            )
        for key in ("restore", "restore_best_weights"):
            if key in es_config:
                flag(es_config[key], f"es_config[{key!r}]")
        if (
            "restore" in es_config
            and "restore_best_weights" in es_config
            and es_config["restore"] != es_config["restore_best_weights"]
        ):
            raise ValueError(
                f"es_config: 'restore' ({_untrusted.short(es_config['restore'])}) and its synonym "
                "'restore_best_weights' "
                f"({_untrusted.short(es_config['restore_best_weights'])}) disagree"
            )
        restore = es_config.get("restore", es_config.get("restore_best_weights", False))
        monitor = es_config.get("monitor", "val_loss")
        if monitor not in ("loss", "val_loss"):
            raise ValueError(
                "es_config['monitor']: expected 'loss' or 'val_loss', got "
                f"{_untrusted.short(monitor)}"
            )
        patience = non_negative_int(es_config.get("patience", 5), "es_config['patience']")
        return EarlyStopping(
            monitor=monitor, patience=int(patience), restore_best_weights=bool(restore)
        )

    def fit_model(
        self,
        epochs: int,
        es_config: dict | None = None,
        validation_split: float = 0.0,
        validation_data: tuple[Any, Any] | None = None,
        **kwargs: Any,
    ) -> History:
        """Train on the training data with Keras 3's rules.

        Parameters
        ----------
        epochs : int
        es_config : dict, optional
            Early stopping: ``monitor`` (``"val_loss"`` default, or ``"loss"``),
            ``patience`` (default 5), ``restore`` (default False; ``restore_best_weights``
            is a synonym).  Unknown keys are ignored with a warning.
        validation_split : float
            The last fraction of the samples, before shuffling, held out for validation.
        validation_data : (inputs, outputs), optional
            In the units of the raw training data: scaled with the training scaling.
        **kwargs
            ``batch_size`` (32), ``shuffle`` (True), ``verbose`` (1; ``"auto"`` is 1),
            ``callbacks``, ``seed`` (of the shuffling).

        Returns
        -------
        History
            ``history.history["loss"]``, ``["val_loss"]``; ``history.model`` is :attr:`model`.

        Raises
        ------
        ValueError
            When early stopping monitors ``val_loss`` without validation data (before any
            training happens).
        """
        if self.training_inputs is None:
            then = "" if self.network is not None else ", then construct_model(layer_definition)"
            raise ValueError(
                "fit_model: no training data; call set_training_data(training_inputs, "
                f"training_outputs) first{then}"
            )
        net = self._require_network()
        unknown = sorted(set(kwargs) - set(self._FIT_KWARGS))
        if unknown:
            raise TypeError(
                f"fit_model: unexpected keyword argument(s) {unknown}; accepted: "
                f"{list(self._FIT_KWARGS)}"
            )
        validation_split = finite_float(
            validation_split, "validation_split", lo=0.0, hi=1.0, hi_open=True
        )
        callbacks = list(kwargs.pop("callbacks", None) or [])
        has_val = validation_data is not None or validation_split > 0
        if es_config is not None:
            es = self._early_stopping(es_config)
            if es.monitor.startswith("val_") and not has_val:
                raise ValueError(
                    f"es_config: early stopping monitors {es.monitor!r} but there is no validation "
                    "data; "
                    "pass validation_split or validation_data, or monitor 'loss'"
                )
            callbacks.append(es)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data: expected a pair (inputs, outputs)")
            vx = as_samples(validation_data[0], net.input_size, "validation_data[0]")
            vy = as_samples(validation_data[1], net.output_size, "validation_data[1]")
            if vx.shape[0] != vy.shape[0]:
                raise ValueError(
                    f"validation_data: expected as many output as input samples, got "
                    f"{vy.shape[0]} and {vx.shape[0]}"
                )
            validation_data = (self._transform(vx, True), self._transform(vy, False))
        verbose = kwargs.pop("verbose", 1)
        verbose = 1 if verbose == "auto" else int(verbose)
        for cb in callbacks:  # evaluation reports in the units of the data, through the scaling
            if getattr(cb, "evaluates", "unset") is None:
                cb.evaluates = self
        # callbacks see the Keras-shaped model, as in Keras
        # (self.model.layers[i].get_weights(), ...)
        history = net.fit(
            self.training_inputs,
            self.training_outputs,
            epochs=epochs,
            optimizer=self._optimizer,
            loss=self._loss,
            validation_split=validation_split,
            validation_data=validation_data,
            callbacks=callbacks,
            verbose=verbose,
            callback_model=self.model,
            **kwargs,
        )
        history.model = self.model
        return history

    # -- prediction ------------------------------------------------------------------------
    def predict(
        self,
        inputs: Any,
        scale: bool | None = None,
        unscale_output: bool | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Outputs for ``inputs`` ``(samples, n_in)``.

        A 1-D array of ``n_in`` values is one sample (the Identity_NN tutorial's
        ``predict(data.reshape(1, -1))`` and ``predict(data)`` give the same); for a one-input
        model a 1-D array is that many samples, as Keras reads it.

        ``scale`` / ``unscale_output`` default to whether the training data was scaled.

        Examples
        --------
        >>> lm = LinnModel()
        >>> lm.set_training_data([[0.0], [2.0]], [[0.0], [4.0]])
        >>> lm.construct_model([(1,)], seed=0)
        >>> lm.set_weights([np.ones((1, 1)), np.zeros(1)])
        >>> lm.predict([0.0, 1.0, 2.0]).ravel().tolist()
        [0.0, 2.0, 4.0]
        """
        net = self._require_network()
        unknown = sorted(set(kwargs) - {"batch_size", "verbose", "steps"})
        if unknown:
            raise TypeError(f"predict: unexpected keyword argument(s) {unknown}")
        scale = self._scaled if scale is None else bool(scale)
        unscale_output = self._scaled if unscale_output is None else bool(unscale_output)
        x = as_samples(inputs, net.input_size, "inputs")
        if scale:
            x = self._transform(x, True)
        y = net.predict(x)
        if unscale_output:
            y = self._inverse_transform(y.astype(np.float64), False)
        return y

    # -- description -----------------------------------------------------------------------
    def summary_text(
        self,
        input_channels: int | None = None,
        output_channels: int | None = None,
        device: str | None = None,
        slots: int | None = None,
    ) -> str:
        """The summary as text: layers, parameters, instrument budget, channels, voltage windows."""
        net = self._require_network()
        view = self._require_view()
        lines = [
            f"LinnModel: {net.input_size} -> "
            + " -> ".join(f"{l.size_out} {l.activation}" for l in net.layers)
            + f" ({net.dtype.name})"
        ]
        lines.append(
            f"  {'#':<3}{'layer':<10}{'shape (in, out)':<18}{'activation':<12}{'params':>8}"
        )
        for i, layer in enumerate(net.layers):
            lines.append(
                f"  {i:<3}{view.layers[1 + 2 * i].name:<10}{layer.shape!s:<18}"
                f"{layer.activation:<12}{layer.n_params:>8}"
            )
        lines.append(
            f"  total parameters: {net.n_params}; weights, biases and every layer's output clipped "
            "to [-1, 1]"
        )
        lines += budget_text(
            [l.size_in for l in net.layers], [l.size_out for l in net.layers], device, slots
        )
        lines += _channel_lines(net.input_size, net.output_size, input_channels, output_channels)
        lines += self._scaling_lines()
        return "\n".join(lines)

    def _scaling_lines(self) -> list[str]:
        pair = self._scalings()
        if pair is None:
            return [
                "scaling: none; data is used as given, so the instrument's [-1, 1] is the data's "
                "range"
            ]
        out = [
            "voltage windows implied by the training scaling (each maps onto the instrument's [-1, "
            "1]):"
        ]
        for label, s, fn in zip(("input", "output"), pair, ("set_input", "set_output")):
            for c in range(s.lo.shape[0]):
                lo, hi = float(s.lo[c]), float(s.hi[c])
                note = "  (constant column: fed as 0)" if s.constant[c] else ""
                out.append(
                    f"  {label} column {c}: [{lo:.6g}, {hi:.6g}] -> {fn}(channel, "
                    f"low_level={lo:.6g}, "
                    f"high_level={hi:.6g}){note}"
                )
        return out

    def summary(
        self,
        input_channels: int | None = None,
        output_channels: int | None = None,
        device: str | None = None,
        slots: int | None = None,
    ) -> None:
        """Print :meth:`summary_text`."""
        print(self.summary_text(input_channels, output_channels, device, slots))


def budget_text(
    inputs: Sequence[int],
    outputs: Sequence[int],
    device: str | None = None,
    slots: int | None = None,
) -> list[str]:
    """Lines describing the instrument budget of layers with these input/output widths.

    Examples
    --------
    >>> budget_text([1, 32], [32, 1])[0]
    'instrument budget: column depth 39 of 1024 (sum over layers of inputs + 3);
    latency about 39 cycles'
    """
    depth = column_depth(inputs)
    limit, label = device_neuron_limit(device, slots)
    widest = max([inputs[0]] + list(outputs))
    ok = len(inputs) <= MAX_LAYERS and widest <= limit and depth <= MAX_COLUMN_DEPTH
    return [
        f"instrument budget: column depth {depth} of {MAX_COLUMN_DEPTH} (sum over layers of inputs "
        "+ 3); "
        f"latency about {depth} cycles",
        f"  dense layers {len(inputs)} of {MAX_LAYERS}; widest {widest} of {limit} neurons "
        f"({label}): " + ("fits" if ok else "does NOT fit"),
    ]


def _channel_lines(n_in: int, n_out: int, in_ch: int | None, out_ch: int | None) -> list[str]:
    lines = []
    for which, width, ch in (("input", n_in, in_ch), ("output", n_out, out_ch)):
        if ch is not None:
            mode = "serial" if ch == 1 and width > 1 else "parallel"
            lines.append(
                f"{which} channels: {ch} ({mode}: "
                + (
                    f"a window of {width} samples on one channel)"
                    if mode == "serial"
                    else f"one {which} per channel)"
                )
            )
        elif width == 1:
            lines.append(f"{which} channels: 1 (one {which})")
        elif width > MAX_PARALLEL_CHANNELS:
            lines.append(
                f"{which} channels: 1 only (serial: a window of {width} samples on one channel)"
            )
        else:
            lines.append(
                f"{which} channels: 1 (serial, a window of {width} samples) or {width} (parallel, "
                "one per channel)"
            )
    return lines


# -- conversion -----------------------------------------------------------------------------
def get_linn(
    model: Any,
    input_channels: int,
    output_channels: int,
    output_mapping: Sequence[int] | None = None,
    clip: bool = False,
    device: str | None = None,
    slots: int | None = None,
) -> dict[str, Any]:
    """The ``.linn`` document of a network, with every instrument rule enforced.

    Parameters
    ----------
    model : LinnModel, LinnModel.model or Network
    input_channels, output_channels : int
        Instrument channels connected: 1 (serial) or, for at most 4 neurons, the neuron
        count (parallel).
    output_mapping : list of int, optional
        Output neurons of the last layer to keep, in order.
    clip : bool
        Clip parameters into ``[-1, 1]``; by default a parameter outside is an error.
    device, slots : optional
        Enforce a device's neurons per layer: ``"Moku:Pro"``/``"Moku:Delta"`` (100),
        ``"Moku:Lab"``/``"Moku:Go"`` with ``slots=2`` (80) or ``slots=3`` (50).

    Returns
    -------
    dict
        ``version``, ``num_input_channels``, ``num_output_channels``, ``layers`` (each with
        ``activation``, ``weights`` as ``(outputs, inputs)`` rows and ``biases``).

    Raises
    ------
    LinnError
        A ``ValueError`` naming the broken rule, the layer and the numbers.

    Examples
    --------
    >>> net = Network([Dense((3, 1), weight=[[0.1], [0.2], [0.3]], bias=[0.1])])
    >>> doc = get_linn(net, input_channels=3, output_channels=1)
    >>> doc["layers"][0]["weights"], doc["layers"][0]["biases"]
    ([[0.10000000149011612, 0.20000000298023224, 0.30000001192092896]], [0.10000000149011612])
    """
    net = _network_of(model)
    clip = flag(clip, "clip")
    if not net.clip:
        warnings.warn(
            "model: this network does not clip its layers' outputs, while the instrument clips "
            "every "
            "layer's output to [-1, 1]; the instrument may compute something else",
            UserWarning,
            stacklevel=2,
        )
    layers: Sequence[tuple[np.ndarray, np.ndarray | None, str]]
    if net.has_batchnorm:  # the instrument has no normalisation: fold it into the next layer
        try:
            layers = net.folded_layers()
        except ValueError as e:
            raise LinnError("only dense layers", str(e)) from None
    else:
        layers = [(l.weight, l.bias, l.activation) for l in net.layers]
    return build_document(
        layers, input_channels, output_channels, output_mapping, clip, device, slots
    )


def save_linn(
    model: Any,
    input_channels: int,
    output_channels: int,
    file_name: str | os.PathLike[str],
    output_mapping: Sequence[int] | None = None,
    clip: bool = False,
    device: str | None = None,
    slots: int | None = None,
) -> Path:
    """Write the ``.linn`` document of a network (see :func:`get_linn`) atomically.

    The document goes to a temporary file in the target's folder, which then replaces the
    target in one step: a failure at any point leaves an earlier file intact.  JSON is
    written with ``json.dump``'s defaults, as the vendor writes it.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> net = Network([Dense((3, 1), weight=[[0.1], [0.2], [0.3]], bias=[0.1])])
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> save_linn(net, 3, 1, folder / "Sum.linn").name
    'Sum.linn'
    >>> round(float(load_linn(folder / "Sum.linn").predict([[1.0, 1.0, 1.0]])[0, 0]), 6)
    0.7
    """
    if not isinstance(file_name, (str, os.PathLike)):
        raise TypeError(
            f"file_name: expected a path ending in .linn, got {type(file_name).__name__}"
        )
    path = Path(file_name)
    if path.suffix != ".linn":
        raise ValueError(f"file_name: expected a name ending in '.linn', got {str(file_name)!r}")
    doc = get_linn(model, input_channels, output_channels, output_mapping, clip, device, slots)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"file_name: folder {str(folder)!r} does not exist")
    with atomic_write(path, "w", name="file_name") as fh:
        json.dump(doc, fh, allow_nan=False)
    return path


# -- reading --------------------------------------------------------------------------------
def _decode(path_or_dict: Any) -> tuple[Any, str]:
    """The JSON-decoded document and a label for messages (through the untrusted reader)."""
    if isinstance(path_or_dict, dict):
        return path_or_dict, "document"
    if not isinstance(path_or_dict, (str, os.PathLike)):
        raise TypeError(
            "path_or_dict: expected a path to a .linn file or a dict, got "
            f"{type(path_or_dict).__name__}"
        )
    label = _untrusted.short(os.fspath(path_or_dict), 80).strip("'\"")
    data = _untrusted.read_bytes(
        path_or_dict,
        limit=MAX_FILE_BYTES,
        what="a .linn file",
        error=lambda m: LinnError("file", m),
    )
    # the vendor's writer may have been fed through an editor that adds a byte-order mark
    text = _untrusted.decode_text(
        data, label=label, allow_bom=True, error=lambda m: LinnError("JSON", m)
    )

    def json_error(message: str) -> LinnError:
        rule = (
            "finite parameters"
            if "not a JSON number" in message
            else "document structure"
            if "duplicate key" in message
            else "JSON"
        )
        return LinnError(rule, message)

    doc = _untrusted.loads_json(text, label=label, max_depth=MAX_JSON_DEPTH, error=json_error)
    return doc, label


def read_linn(
    path_or_dict: Any, device: str | None = None, slots: int | None = None
) -> tuple[dict[str, Any], list[LinnLayer]]:
    """Decode and validate a ``.linn`` document; its header and layers.

    Raises
    ------
    LinnError
        Naming the broken rule and where (``layers[2].weights[5]``...).
    FileNotFoundError
    """
    doc, label = _decode(path_or_dict)
    limit, limit_label = device_neuron_limit(device, slots)
    try:
        return parse_document(doc, limit=limit, limit_label=limit_label)
    except LinnError as exc:
        if label == "document":
            raise
        raise LinnError(exc.rule, f"{label}: {str(exc).split('] ', 1)[1]}") from None


def describe_linn(
    path_or_dict: Any, device: str | None = None, slots: int | None = None
) -> dict[str, Any]:
    """Validate a document and describe it as the instrument does.

    Examples
    --------
    >>> doc = {"version": "0.1", "num_input_channels": 3, "num_output_channels": 1,
    ...        "layers": [{"activation": "linear", "weights": [[0.1, 0.2, 0.3]], "biases": [0.1]}]}
    >>> describe_linn(doc)
    {'inputs': 3, 'outputs': 1, 'num_input_channels': 3, 'num_output_channels': 1,
     'layers': [{'activation': 'Linear', 'inputs': 3, 'outputs': 1}]}
    """
    header, layers = read_linn(path_or_dict, device, slots)
    return describe(header, layers)


def load_linn(
    path_or_dict: Any, dtype: Any = "float32", device: str | None = None, slots: int | None = None
) -> Network:
    """A :class:`Network` computing exactly what a ``.linn`` document describes.

    Each layer computes ``clip(act(W x + b), -1, 1)`` (the network has ``clip=True``).  The
    document is untrusted: it is read as JSON only (nothing executed), and its structure,
    types, sizes, finiteness and every converter rule are checked before any array is built.
    The network can be trained further and written again with :func:`save_linn`.

    Parameters
    ----------
    path_or_dict : str, path or dict
        A ``.linn`` file or its decoded JSON.
    dtype : {"float32", "float64"}
        Precision of the network (float32 default: the vendor writes float32 values, so
        ``get_linn(load_linn(doc))`` gives back the same numbers).
    device, slots : optional
        Also enforce that device's neurons per layer (see :func:`get_linn`).

    Examples
    --------
    >>> doc = {"version": "0.1", "num_input_channels": 1, "num_output_channels": 1,
    ...        "layers": [{"activation": "relu", "weights": [[1.0]], "biases": [-0.5]}]}
    >>> load_linn(doc).predict([0.0, 0.75, 3.0]).ravel().tolist()
    [0.0, 0.25, 1.0]
    """
    _, layers = read_linn(path_or_dict, device, slots)
    dense = [
        Dense(
            (l.inputs, l.outputs),
            l.activation,
            weight=l.weights.T.astype(np.float64),
            bias=l.biases.astype(np.float64),
            name=f"dense{i}",
        )
        for i, l in enumerate(layers)
    ]
    return Network(dense, clip=True, dtype=dtype)


# The layers below take LinnModels and .linn documents without importing this module.
_model_files._linn_model_type = LinnModel
_quantized._linn_reader = load_linn
