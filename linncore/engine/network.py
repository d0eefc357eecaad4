"""Feed-forward networks of dense layers, trained with Keras 3's semantics.

All parameters of a :class:`Network` live in one contiguous vector ``theta``, layer by layer,
for each layer the kernel ``(n_in, n_out)`` row-major and then the bias; the layers hold views
into it.  Training runs one compiled call per epoch (batches, forward, loss, backward,
optimizer step and parameter clipping in C, with the GIL released).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _backend
from .._util.codes import (
    ACTIVATIONS,
    NEAR_RAIL,
    QAT_FIELDS,
    RAIL_NAMES,
    STATUS_NONFINITE_LOSS,
    STATUS_OK,
)
from .._util.kernel_args import QuantConfig
from .._util.validate import (
    as_float_array,
    as_samples,
    check_finite,
    finite_float,
    flag,
    float_dtype,
    non_negative_int,
    positive_int,
    seed_value,
)
from . import losses as _losses
from . import optimizers as _optimizers
from .callbacks import Callback, History, ProgressLogger
from .layers import BatchNormalization, Dense

__all__ = ["Network", "NetSpec", "TrainingDivergedWarning"]

#: Widest format the training kernels take (fixed-point inference and casts go to 64 bits).
QAT_MAX_BITS = 32


def _side_seed(rng: np.random.Generator) -> int:
    """A 64-bit seed derived from ``rng``'s seed sequence without drawing from ``rng`` (so the
    shuffling order does not depend on whether stochastic rounding needs a seed)."""
    seq = getattr(rng.bit_generator, "seed_seq", None)
    entropy = getattr(seq, "entropy", None)
    if entropy is None:
        return 0
    child = np.random.SeedSequence(
        entropy, spawn_key=tuple(getattr(seq, "spawn_key", ())) + (0x51A7,)
    )
    return int(child.generate_state(1, np.uint64)[0])


# The reader of precision configs for quantization-aware training.  The engine does not import
# the fixed-point layer above it; ``linncore.fixed.precision`` registers its reader here.
_precision_reader: Callable[[Any], Any] | None = None


def _bn_arrays(bn: BatchNormalization) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """gamma, beta, moving mean and moving variance of a batch normalisation bound into a
    network (a bound layer has all four)."""
    gamma, beta, mean, var = bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance
    if gamma is None or beta is None or mean is None or var is None:
        raise RuntimeError(f"{bn.name}: batch normalisation not bound to a network")
    return gamma, beta, mean, var


def _unpickle_network(layers: list[Any], clip: bool, dtype: str) -> Network:
    return Network(layers, clip=clip, dtype=dtype)


class TrainingDivergedWarning(RuntimeWarning):
    """Training met a non-finite loss or parameter and stopped, keeping the last finite weights."""


@dataclass(frozen=True)
class NetSpec:
    """The structure of a network as the kernels read it."""

    sizes: np.ndarray  # int64, n_layers + 1 widths
    acts: np.ndarray  # int32 activation codes
    has_bias: np.ndarray  # int32 flags
    clip_out: bool
    bn: np.ndarray | None = None  # int32 flags: batch normalisation after the layer
    bn_momentum: np.ndarray | None = None  # float64 per layer
    bn_epsilon: np.ndarray | None = None  # float64 per layer


class Network:
    """A stack of :class:`~linncore.Dense` layers with Keras-compatible training.

    Parameters
    ----------
    layers : sequence of Dense
        The layers in order; each layer's input width must equal the previous one's output
        width.  A layer already held by another network is copied.
    clip : bool
        Instrument-style clipping (default True): every layer's output is clipped to
        ``[-1, 1]`` after its activation, and every kernel and bias is clipped to ``[-1, 1]``
        after each optimizer step.
    dtype : {"float32", "float64"}
        Precision of parameters and arithmetic (default float32, as Keras).

    Attributes
    ----------
    layers : tuple of Dense
    clip : bool
    dtype : numpy.dtype
    stop_training : bool
        Set by a callback to end ``fit`` after the current epoch.

    Examples
    --------
    >>> import numpy as np
    >>> net = Network([Dense((1, 8), "tanh", seed=0), Dense((8, 1), seed=1)])
    >>> net.n_params
    25
    >>> x = np.linspace(-1, 1, 64)[:, None]
    >>> history = net.fit(x, x ** 2, epochs=5, verbose=0, seed=0)
    >>> len(history.history["loss"])
    5
    >>> net.predict(x[:2]).shape
    (2, 1)
    """

    def __init__(
        self,
        layers: Sequence[Dense | BatchNormalization],
        clip: bool = True,
        dtype: Any = "float32",
    ) -> None:
        if isinstance(layers, Dense):
            layers = [layers]
        layers = list(layers) if isinstance(layers, Iterable) else layers
        if not isinstance(layers, list) or not layers:
            raise ValueError(
                f"layers: expected a non-empty sequence of Dense layers, got {layers!r}"
            )
        dense: list[Dense] = []
        norms: list[BatchNormalization | None] = []
        for i, layer in enumerate(layers):
            if isinstance(layer, BatchNormalization):
                if not dense or norms[-1] is not None:
                    raise ValueError(
                        f"layers[{i}]: a BatchNormalization must follow a Dense layer "
                        "(one per Dense)"
                    )
                norms[-1] = layer
            elif isinstance(layer, Dense):
                dense.append(layer)
                norms.append(None)
            else:
                raise TypeError(f"layers[{i}]: expected a Dense layer, got {type(layer).__name__}")
        for i in range(1, len(dense)):
            if dense[i].size_in != dense[i - 1].size_out:
                raise ValueError(
                    f"layers[{i}]: expected {dense[i - 1].size_out} inputs (the outputs of "
                    f"layers[{i - 1}]), got shape {dense[i].shape}"
                )
        self._dtype = float_dtype(dtype)
        self.clip = flag(clip, "clip")
        self.stop_training = False
        owned = [layer if layer._owner is None else layer.copy() for layer in dense]
        bns = [
            None if bn is None else (bn if bn.gamma is None or bn.gamma.base is None else bn.copy())
            for bn in norms
        ]
        self._theta = np.zeros(
            sum(
                layer.n_params + (2 * layer.size_out if bn else 0) for layer, bn in zip(owned, bns)
            ),
            dtype=self._dtype,
        )
        self._bn_state = np.zeros(
            sum(2 * layer.size_out for layer, bn in zip(owned, bns) if bn), dtype=self._dtype
        )
        has_bn = any(bn is not None for bn in bns)
        self._spec = NetSpec(
            sizes=np.array(
                [owned[0].size_in] + [layer.size_out for layer in owned], dtype=np.int64
            ),
            acts=np.array([ACTIVATIONS[layer.activation] for layer in owned], dtype=np.int32),
            has_bias=np.array([layer.has_bias for layer in owned], dtype=np.int32),
            clip_out=self.clip,
            bn=np.array([bn is not None for bn in bns], dtype=np.int32) if has_bn else None,
            bn_momentum=np.array([bn.momentum if bn else 0.0 for bn in bns]) if has_bn else None,
            bn_epsilon=np.array([bn.epsilon if bn else 0.0 for bn in bns]) if has_bn else None,
        )
        # Where each layer's parameters and state sit: the kernels' layout table, the one owner
        # of that fact (per layer the offsets of the kernel, the bias, gamma with beta after it,
        # and the moving mean with the variance after it; -1 where absent).
        self._layout = _backend.kernels().net_layout(self._spec)
        self._layout.flags.writeable = False
        # The description the kernels read, checked and built once per engine (see _prepared).
        self._prepared_for: Any = None
        self._prepared_net: Any = None
        for i, (layer, bn) in enumerate(zip(owned, bns)):
            n_in, n_out = layer.shape
            w_at, b_at, g_at, s_at = (int(o) for o in self._layout[i])
            w = self._theta[w_at : w_at + n_in * n_out].reshape(n_in, n_out)
            b = self._theta[b_at : b_at + n_out] if layer.has_bias else None
            layer._bind(w, b, self)
            if layer.name is None:
                layer.name = f"dense{i}"
            if bn is not None:
                bn._bind(
                    self._theta[g_at : g_at + n_out],
                    self._theta[g_at + n_out : g_at + 2 * n_out],
                    self._bn_state[s_at : s_at + n_out],
                    self._bn_state[s_at + n_out : s_at + 2 * n_out],
                )
                if bn.name is None:
                    bn.name = f"batchnorm{i}"
        names = [layer.name for layer in owned]
        if len(set(names)) != len(names):
            raise ValueError(f"layers: layer names must be unique, got {names}")
        self._layers = tuple(owned)
        self._norms = tuple(bns)

    # -- structure -----------------------------------------------------------------------
    @property
    def layers(self) -> tuple[Dense, ...]:
        return self._layers

    @property
    def batch_norms(self) -> tuple[BatchNormalization | None, ...]:
        """Per dense layer, the batch normalisation of its output, or None."""
        return self._norms

    @property
    def has_batchnorm(self) -> bool:
        return self._spec.bn is not None

    @property
    def bn_state(self) -> np.ndarray:
        """The moving means and variances of every batch normalisation (state, not trained)."""
        return self._bn_state

    def folded_layers(self) -> list[tuple[np.ndarray, np.ndarray, str]]:
        """``(kernel, bias, activation)`` per dense layer with every batch normalisation folded
        into the following layer, in float64: inference-mode normalisation ``y = s a + t``
        (``s = gamma / sqrt(moving_variance + epsilon)``, ``t = beta - s moving_mean``) feeds
        ``y W + b = a (s W) + (t W + b)``.  A layer without bias gets a zero bias.

        Raises
        ------
        ValueError
            When the last layer is batch-normalised: no following layer can absorb it.
        """
        out: list[tuple[np.ndarray, np.ndarray, str]] = []
        pending: tuple[np.ndarray, np.ndarray] | None = None
        for layer, bn in zip(self._layers, self._norms):
            W = layer.weight.astype(np.float64)
            b = (
                layer.bias.astype(np.float64)
                if layer.bias is not None
                else np.zeros(layer.size_out)
            )
            if pending is not None:
                scale, shift = pending
                W, b = scale[:, None] * W, shift @ W + b
            out.append((W, b, layer.activation))
            pending = None
            if bn is not None:
                gamma, beta, mean, var = _bn_arrays(bn)
                scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + bn.epsilon)
                pending = (scale, beta.astype(np.float64) - scale * mean.astype(np.float64))
        if pending is not None:
            raise ValueError(
                f"batch normalisation after the last dense layer ({self._layers[-1].name}) "
                "cannot be folded: no following layer can absorb it; remove it or end the network "
                "with a dense layer"
            )
        return out

    def _refuse_batchnorm(self, what: str) -> None:
        if self.has_batchnorm:
            raise ValueError(f"{what} is not available for networks with batch normalisation yet")

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def spec(self) -> NetSpec:
        return self._spec

    @property
    def input_size(self) -> int:
        return self._layers[0].size_in

    @property
    def output_size(self) -> int:
        return self._layers[-1].size_out

    @property
    def n_params(self) -> int:
        return int(self._theta.shape[0])

    @property
    def theta(self) -> np.ndarray:
        """All parameters as one flat vector (kernel then bias, layer by layer); live: writing
        into it changes the network."""
        return self._theta

    def __repr__(self) -> str:
        widths = " -> ".join(
            [str(self.input_size)] + [f"{l.size_out} {l.activation}" for l in self._layers]
        )
        return f"Network({widths}, clip={self.clip}, dtype={self._dtype.name})"

    def summary_text(self) -> str:
        """A table of the layers, their activations and parameter counts."""
        rows = [f"{'layer':<10}{'shape':<14}{'activation':<12}{'params':>8}"]
        for layer, bn in zip(self._layers, self._norms):
            rows.append(
                f"{layer.name:<10}{layer.shape!s:<14}{layer.activation:<12}{layer.n_params:>8}"
            )
            if bn is not None:
                size = _bn_arrays(bn)[0].shape[0]
                rows.append(f"{bn.name:<10}{(size,)!s:<14}{'batchnorm':<12}{2 * size:>8}")
        rows.append(
            f"total parameters: {self.n_params} ({self._dtype.name}); "
            f"outputs clipped to [-1, 1]: {'yes' if self.clip else 'no'}"
        )
        return "\n".join(rows)

    def summary(self) -> None:
        """Print :meth:`summary_text`."""
        print(self.summary_text())

    def copy(self) -> Network:
        """An independent network with the same layers, parameters, clipping and dtype."""
        layers: list[Any] = []
        for layer, bn in zip(self._layers, self._norms):
            layers.append(layer.copy())
            if bn is not None:
                layers.append(bn.copy())
        return Network(layers, clip=self.clip, dtype=self._dtype)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle as the layers and settings, so the copy's layers view its own parameter
        # vector again (a plain pickle of the instance would break those views).
        layers: list[Any] = []
        for layer, bn in zip(self._layers, self._norms):
            layers.append(layer.copy())
            if bn is not None:
                layers.append(bn.copy())
        return (_unpickle_network, (layers, self.clip, self._dtype.name))

    # -- weights -------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters in Keras's layout.

        ``[kernel_0 (n_in, n_out), bias_0, kernel_1, ...]``: a layer without bias contributes
        its kernel only; a batch normalisation adds ``gamma, beta, moving_mean,
        moving_variance`` after its layer, as in Keras.
        """
        return [arr.copy() for _, arr in self._weight_slots(trainable_only=False)]

    def _weight_slots(self, trainable_only: bool = True) -> list[tuple[str, np.ndarray]]:
        """(name, live array) of every parameter in get_weights order; trainable ones only (the
        order of theta) unless asked."""
        slots: list[tuple[str, np.ndarray]] = []
        for layer, bn in zip(self._layers, self._norms):
            slots.append((f"{layer.name} kernel", layer.weight))
            if layer.bias is not None:
                slots.append((f"{layer.name} bias", layer.bias))
            if bn is not None:
                gamma, beta, mean, var = _bn_arrays(bn)
                slots += [(f"{bn.name} gamma", gamma), (f"{bn.name} beta", beta)]
                if not trainable_only:
                    slots += [(f"{bn.name} moving_mean", mean), (f"{bn.name} moving_variance", var)]
        return slots

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set every parameter from a list in Keras's layout (see :meth:`get_weights`).

        Raises
        ------
        ValueError
            When the list has the wrong length, or an array the wrong shape or a non-finite
            value; nothing is changed then.
        """
        slots = self._weight_slots(trainable_only=False)
        if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence):
            raise TypeError(
                f"weights: expected a list of {len(slots)} arrays, got {type(weights).__name__}"
            )
        if len(weights) != len(slots):
            raise ValueError(
                f"weights: expected {len(slots)} arrays ({', '.join(n for n, _ in slots)}), "
                f"got {len(weights)}"
            )
        checked = []
        for i, ((name, target), value) in enumerate(zip(slots, weights)):
            arr = as_float_array(value, f"weights[{i}] ({name})")
            if arr.shape != target.shape:
                raise ValueError(
                    f"weights[{i}] ({name}): expected shape {target.shape}, got {arr.shape}"
                )
            check_finite(arr, f"weights[{i}] ({name})")
            checked.append(arr)
        for (_, target), arr in zip(slots, checked):
            target[...] = arr

    def set_theta(self, theta: Any) -> None:
        """Set all parameters from one flat vector in ``theta``'s order."""
        arr = as_float_array(theta, "theta")
        if arr.shape != self._theta.shape:
            raise ValueError(f"theta: expected shape {self._theta.shape}, got {arr.shape}")
        check_finite(arr, "theta")
        self._theta[...] = arr

    # -- evaluation ----------------------------------------------------------------------
    def _prepared(self, kernels: Any) -> Any:
        """The network description ``kernels`` read (``kernels.prepare_net`` of the spec),
        made once per engine: the spec never changes, and preparing it costs more than a
        forward pass of a few samples."""
        if self._prepared_for is not kernels:
            self._prepared_net = kernels.prepare_net(self._spec)
            self._prepared_for = kernels
        return self._prepared_net

    def _state(self) -> np.ndarray | None:
        """The batch-normalisation state the kernels take (None without batch normalisation)."""
        return self._bn_state if self.has_batchnorm else None

    def _samples(self, X: Any, Y: Any | None, name_x: str = "X", name_y: str = "Y"):
        x = as_samples(X, self.input_size, name_x, dtype=self._dtype)
        if Y is None:
            return x, None
        y = as_samples(Y, self.output_size, name_y, dtype=self._dtype)
        if y.shape[0] != x.shape[0]:
            raise ValueError(
                f"{name_y}: expected {x.shape[0]} samples (as many as {name_x}), got {y.shape[0]}"
            )
        return x, y

    def predict(self, X: Any) -> np.ndarray:
        """Outputs for samples ``X`` of shape ``(n, n_in)``, in the network's dtype.

        A 1-D ``X`` is read as ``n`` samples when the network has one input, else as one sample.
        """
        x, _ = self._samples(X, None)
        if not np.isfinite(self._theta).all():  # one pass; the details only on failure
            bad = ~np.isfinite(self._theta)
            raise ValueError(
                f"predict: the network's parameters are not finite ({int(bad.sum())} of "
                f"{self._theta.size}, the first theta[{int(np.argmax(bad))}]); reload or retrain it"
            )
        kernels = _backend.kernels()
        out = kernels.net_forward(self._prepared(kernels), self._theta, x, self._state())
        if not np.isfinite(out).all():
            bad = ~np.isfinite(out)
            i, j = (int(k) for k in np.argwhere(bad)[0])
            raise ValueError(
                f"predict: non-finite output {out[i, j]} for sample {i}, output {j} "
                f"({int(bad.sum())} in all) from finite inputs: the parameters (largest "
                f"|value| {float(np.max(np.abs(self._theta))):.3g}) overflow {self._dtype.name}"
            )
        return out

    __call__ = predict

    def loss(self, X: Any, Y: Any, loss: str = "mse") -> float:
        """The loss of the whole set ``(X, Y)`` at the current parameters."""
        return self.loss_and_grad(X, Y, loss)[0]

    def _loss_grad_flat(self, x: np.ndarray, y: np.ndarray, loss: str) -> tuple[float, np.ndarray]:
        kernels = _backend.kernels()
        value, grad, _ = kernels.net_loss_grad(
            self._prepared(kernels), self._theta, x, y, _losses.code(loss)
        )
        return value, grad

    def loss_and_grad(self, X: Any, Y: Any, loss: str = "mse") -> tuple[float, list[np.ndarray]]:
        """The loss over ``(X, Y)`` taken as one batch, and its gradient.

        Returns
        -------
        loss : float
        grads : list of ndarray
            In :meth:`get_weights` order and shapes.

        Examples
        --------
        >>> import numpy as np
        >>> net = Network([Dense((2, 1), weight=[[1.0], [0.0]], bias=[0.0])], clip=False,
        ...               dtype="float64")
        >>> loss, grads = net.loss_and_grad([[1.0, 0.0]], [[0.5]], loss="half_mse")
        >>> loss, grads[0].ravel().tolist(), grads[1].tolist()
        (0.125, [0.5, 0.0], [0.5])
        """
        x, y = self._samples(X, Y)
        value, flat = self._loss_grad_flat(x, y, _losses.get(loss))
        blocks = self._blocks()
        return value, [flat[at : at + math.prod(shape)].reshape(shape) for at, shape in blocks]

    def _blocks(self) -> list[tuple[int, tuple[int, ...]]]:
        """(offset in theta, shape) of every trainable array in get_weights order, from the
        layout table."""
        blocks: list[tuple[int, tuple[int, ...]]] = []
        for (w_at, b_at, g_at, _), layer in zip(self._layout.tolist(), self._layers):
            blocks.append((w_at, layer.shape))
            if b_at >= 0:
                blocks.append((b_at, (layer.size_out,)))
            if g_at >= 0:
                blocks += [(g_at, (layer.size_out,)), (g_at + layer.size_out, (layer.size_out,))]
        return blocks

    # -- training ------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        Y: Any,
        epochs: int = 1,
        batch_size: int = 32,
        optimizer: Any = "adam",
        loss: str = "mse",
        shuffle: bool = True,
        validation_split: float = 0.0,
        validation_data: tuple[Any, Any] | None = None,
        callbacks: Sequence[Any] | None = None,
        verbose: int = 1,
        seed: int | np.random.Generator | None = None,
        precision: Any = None,
        callback_model: Any = None,
    ) -> History:
        """Train with Keras 3's semantics.

        Parameters
        ----------
        X, Y : array_like
            Training inputs ``(n, n_in)`` and targets ``(n, n_out)``; finite.
        epochs : int
            Number of passes over the training data.
        batch_size : int
            Samples per step (default 32; None means 32, as in Keras); the last, partial batch
            is kept.
        optimizer : str or Optimizer
            ``"adam"`` (default), ``"sgd"`` or an optimizer object, whose state carries over
            between calls.
        loss : str
            ``"mse"`` (default, Keras's), ``"half_mse"`` or ``"mae"``.
        shuffle : bool
            Reshuffle the training samples every epoch (default True).
        validation_split : float
            In ``[0, 1)``: the last ``n - floor(n * (1 - v))`` samples, taken before any
            shuffling, are held out as validation data.
        validation_data : (X_val, Y_val), optional
            Validation data; takes precedence over ``validation_split``.
        callbacks : list, optional
            Objects with Keras's callback hooks (see :mod:`linncore.engine.callbacks`).
        verbose : int
            0 silent, 1 a progress line (default), 2 a line per epoch.
        seed : int or numpy.random.Generator, optional
            Seed of the shuffling (and of stochastic rounding); the same seed and initial
            weights give bit-identical weights.
        precision : PrecisionDict or dict, optional
            Quantization-aware training, in the compiled epoch like plain training: per layer
            ``input``, ``weight``, ``bias``, ``accumulator`` and ``activation`` formats on the
            forward path (gradients through the straight-through estimator), ``gradient``
            formats on the gradients, ``update`` formats on the optimizer's increments
            (``STOCH`` rounding answers update underflow), and kernels and biases stored
            through their ``weight`` and ``bias`` formats after every step.  Fields left float
            cost nothing; with every field float the result equals plain training bit for bit.
            The per-step rail statistics are in ``history.rail``.
        callback_model : object, optional
            What callbacks see as ``self.model`` (default this network); a wrapper such as
            ``LinnModel.model`` passes itself, as Keras does.  It must forward
            ``stop_training``, ``get_weights`` and ``set_weights`` to this network.

        Returns
        -------
        History
            ``history.history["loss"]`` (the mean of the batch losses over the epoch,
            weighted by batch size) and ``"val_loss"`` (after the epoch, with its final
            weights) per epoch.  When training meets a non-finite loss it stops with a
            :class:`TrainingDivergedWarning`, keeps the last finite weights and sets
            ``history.diverged``.  With ``precision``, ``history.rail`` maps each rail
            statistic (``weight_saturation_fraction_max``, ``weight_near_rail_fraction_max``,
            ``gradient_saturation_fraction_max``, ``gradient_near_rail_fraction_max``,
            ``update_saturation_fraction_max``, ``update_underflow_fraction_max``) to one value
            per step (NaN where that role is not quantized).
        """
        epochs = non_negative_int(epochs, "epochs", hi=2**63 - 1)
        batch_size = positive_int(
            32 if batch_size is None else batch_size, "batch_size"
        )  # None: Keras's 32
        seed = seed_value(seed)
        shuffle = flag(shuffle, "shuffle")
        loss = _losses.get(loss)
        opt = _optimizers.get(optimizer)
        validation_split = finite_float(
            validation_split, "validation_split", lo=0.0, hi=1.0, hi_open=True
        )
        x, y = self._samples(X, Y)
        x_val = y_val = None
        if validation_data is not None:
            if (
                not isinstance(validation_data, (tuple, list))
                or len(validation_data) != 2
                or validation_data[1] is None
            ):
                raise ValueError("validation_data: expected a pair (X_val, Y_val) of arrays")
            x_val, y_val = self._samples(
                validation_data[0], validation_data[1], "validation_data[0]", "validation_data[1]"
            )
        elif validation_split > 0:
            n_train = int(math.floor(x.shape[0] * (1.0 - validation_split)))
            if n_train == 0 or n_train == x.shape[0]:
                raise ValueError(
                    f"validation_split: {validation_split} of {x.shape[0]} samples leaves "
                    f"{n_train} for training and {x.shape[0] - n_train} for validation; "
                    "both need at least one"
                )
            x, x_val = x[:n_train], x[n_train:]
            y, y_val = y[:n_train], y[n_train:]
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        n = x.shape[0]
        asked, batch_size = batch_size, min(batch_size, n)  # the same steps, a count C can hold
        history = History()
        history.params = {
            "epochs": epochs,
            "steps": math.ceil(n / batch_size),
            "batch_size": asked,
            "samples": n,
            "verbose": verbose,
        }
        cbs: list[Any] = list(callbacks or [])
        for i, cb in enumerate(cbs):
            if not any(
                hasattr(cb, h)
                for h in ("on_epoch_end", "on_train_begin", "on_train_end", "on_epoch_begin")
            ):
                raise TypeError(
                    f"callbacks[{i}]: expected an object with Keras callback hooks, "
                    f"got {type(cb).__name__}"
                )
        cbs.append(history)
        if verbose:  # nothing per epoch when silent
            cbs.append(ProgressLogger(epochs, verbose, history=history, callbacks=cbs[:-1]))
        if precision is not None:
            self._refuse_batchnorm("quantization-aware training (precision=...)")
        qat = self._qat_arrays(precision) if precision is not None else None
        m, v = opt._state(self.n_params, self._dtype)
        kernels = _backend.kernels()
        # Everything an epoch needs that does not change between epochs is made here, once: the
        # network description the kernels read (checked once, its layout table computed once),
        # the run over this fit's arrays (checked once; it holds the undo buffers and the
        # permutation buffer), the limits and the callbacks' hooks.
        rails: list[np.ndarray] = []
        quant = (
            None if qat is None else QuantConfig(*qat, seed=_side_seed(rng), near_rail=NEAR_RAIL)
        )
        loss_code = _losses.code(loss)
        run = kernels.prepare_train(
            self._prepared(kernels),
            self._theta,
            x,
            y,
            batch_size=batch_size,
            loss=loss_code,
            m=m,
            v=v,
            clip_params=self.clip,
            bn_state=self._state(),
            quant=quant,
            X_val=x_val,
            Y_val=y_val,
            rng=rng if shuffle else None,
        )
        steps = math.ceil(n / batch_size)
        ceiling = float(np.finfo(self._dtype).max)
        has_val = x_val is not None
        self.stop_training = False
        self._call(cbs, "set_model", self if callback_model is None else callback_model)
        self._call(cbs, "on_train_begin", {})
        epoch_begin = self._hooks(cbs, "on_epoch_begin")
        epoch_end = self._hooks(cbs, "on_epoch_end")
        for epoch in range(epochs):
            if epoch_begin:
                begin_logs: dict[str, float] = {}
                for hook in epoch_begin:
                    hook(epoch, begin_logs)
            # An epoch is applied wholly or not at all: an interrupt (Ctrl-C) before its results
            # are committed restores the parameters, the optimizer (moments and step count),
            # the batch-norm state and the shuffling generator as they were before it.
            run.save()
            saved = (opt.iterations, rng.bit_generator.state if shuffle else None)
            try:
                if shuffle:
                    run.shuffle()  # the values and draws of rng.shuffle(arange(n))
                rail = None if quant is None else np.full((steps, len(RAIL_NAMES)), np.nan)
                status, loss_sum, n_done, opt.iterations = run.epoch(
                    opt._config(), opt.iterations, rail=rail
                )
            except BaseException:
                self._restore_epoch(run, saved, opt, rng)
                raise
            if rail is not None:
                rails.append(rail[: math.ceil(n_done / batch_size)])
            # Unclipped and quantized training can grow a loss that no float32 holds while every
            # step stays finite (saturated gradients): that epoch counts as diverged and is undone.
            overflow = status == STATUS_OK and n_done > 0 and not loss_sum / n_done <= ceiling
            if overflow:
                self._restore_epoch(run, saved, opt, rng)
                history.diverged = True
                history.stop_reason = (
                    f"the mean loss of epoch {epoch + 1} ({loss_sum / n_done:.3g}) exceeds the "
                    f"largest {self._dtype.name} ({ceiling:.3g}); the weights are those before "
                    "that epoch"
                )
                warnings.warn(
                    f"training diverged: {history.stop_reason}",
                    TrainingDivergedWarning,
                    stacklevel=2,
                )
                if qat is not None:
                    rails.pop()
                break
            if status != STATUS_OK:
                what = "loss" if status == STATUS_NONFINITE_LOSS else "parameter update"
                history.diverged = True
                history.stop_reason = (
                    f"non-finite {what} in epoch {epoch + 1} after {n_done} of {n} samples "
                    f"(step {opt.iterations + 1}); the weights are those of the last finite step"
                )
                warnings.warn(
                    f"training diverged: {history.stop_reason}",
                    TrainingDivergedWarning,
                    stacklevel=2,
                )
                break
            logs: dict[str, float] = {"loss": loss_sum / n_done}
            if has_val:  # in the compiled core: one call, no gradient
                logs["val_loss"] = run.val_loss()
            for hook in epoch_end:
                hook(epoch, logs)
            if self.stop_training:
                history.stop_reason = f"stopped by a callback after epoch {epoch + 1}"
                break
        self._call(cbs, "on_train_end", {})
        history.model = self
        if qat is not None:
            table = np.concatenate(rails) if rails else np.zeros((0, len(RAIL_NAMES)))
            history.rail = {name: table[:, i].copy() for i, name in enumerate(RAIL_NAMES)}
        return history

    def _restore_epoch(
        self,
        run: Any,
        saved: tuple[int, Mapping[str, Any] | None],
        opt: Any,
        rng: np.random.Generator,
    ) -> None:
        """Undo a partly applied epoch (see :meth:`fit`): the parameters, moments and batch-norm
        state from ``run``'s last save, the step count and the generator's state (None when the
        epoch drew nothing from it) from ``saved``."""
        run.restore()
        opt.iterations, rng_state = saved
        if rng_state is not None:
            rng.bit_generator.state = rng_state

    def _qat_arrays(self, precision: Any) -> tuple[np.ndarray, np.ndarray]:
        """(fmts (L, fields, 5) int32, on (L, fields) int32) of a precision config."""
        if _precision_reader is None:
            raise TypeError(
                "precision: reading a precision config needs linncore.fixed; import linncore"
            )
        pd = _precision_reader(precision)
        names = [layer.name for layer in self._layers]
        pd.validate(names)
        fmts = np.zeros((len(names), len(QAT_FIELDS), 5), dtype=np.int32)
        on = np.zeros((len(names), len(QAT_FIELDS)), dtype=np.int32)
        for l, name in enumerate(names):
            for field in ("momentum", "adam_m", "adam_v"):
                if pd.dtype(name, field) is not None:
                    raise ValueError(
                        f"precision: the {field!r} field ({name}) is not supported in training "
                        "yet; optimizer state stays float"
                    )
            for f, field in enumerate(QAT_FIELDS):
                fmt = pd.dtype(name, field)
                if fmt is not None and fmt.bits > QAT_MAX_BITS:
                    raise ValueError(
                        f"precision: the {field!r} format of {name} is {fmt}; training takes "
                        f"formats up to {QAT_MAX_BITS} bits (wider formats work in quantize, "
                        "fixed_matmul and QuantizedNetwork)"
                    )
                if fmt is not None:
                    fmts[l, f] = fmt.as_tuple()
                    on[l, f] = 1
        return fmts, on

    @staticmethod
    def _hooks(cbs: list[Any], hook: str) -> list[Callable[..., Any]]:
        """The callbacks' ``hook`` methods in order, without those that do nothing (absent, or
        :class:`Callback`'s own empty hook): what runs every epoch, looked up once per fit."""
        empty = getattr(Callback, hook)
        found = (getattr(cb, hook, None) for cb in cbs)
        return [fn for fn in found if fn is not None and getattr(fn, "__func__", None) is not empty]

    @staticmethod
    def _call(cbs: list[Any], hook: str, *args: Any) -> None:
        for cb in cbs:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)
