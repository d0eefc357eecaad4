"""Training callbacks with Keras's hooks, and the history ``fit`` returns.

A callback is any object with some of the methods of :class:`Callback`; ``fit`` calls
``set_model(network)`` first, then ``on_train_begin(logs)``, ``on_epoch_begin(epoch, logs)``,
``on_epoch_end(epoch, logs)`` (``logs`` holds ``loss`` and ``val_loss``) and
``on_train_end(logs)``.  Setting ``network.stop_training = True`` ends training after the
current epoch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .._util.progress import Progress, metric, per_unit, seconds
from .._util.validate import finite_float, flag, non_negative_int

__all__ = ["Callback", "History", "EarlyStopping", "LambdaCallback", "ProgressLogger"]


class Callback:
    """Base class of training callbacks; every hook does nothing by default."""

    model: Any = None

    def set_model(self, model: Any) -> None:
        self.model = model

    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...


class History(Callback):
    """What ``fit`` returns: per-epoch values, as Keras's ``History``.

    Attributes
    ----------
    history : dict of str to list of float
        ``loss``, ``val_loss`` (with validation data) and anything else logged per epoch.
    epoch : list of int
        The epoch indices run (0-based).
    params : dict
        ``epochs``, ``steps`` (per epoch), ``batch_size``, ``samples``, ``verbose``.
    model : Network
        The trained network.
    diverged : bool
        True when training stopped at a non-finite loss or parameter.
    stop_reason : str or None
        Why training stopped before ``epochs`` (early stopping, divergence), else None.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params: dict[str, Any] = {}
        self.diverged = False
        #: Per-step rail statistics of quantization-aware training (set by ``fit``), or None.
        self.rail: dict[str, np.ndarray] | None = None
        self.stop_reason: str | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self) -> str:
        keys = ", ".join(self.history)
        return f"History(epochs={len(self.epoch)}, keys=[{keys}])"


#: Quantities Keras 3's metrics maximise (their direction is "up"), and those they minimise.
_MAXIMISED = frozenset(
    {
        "accuracy",
        "acc",
        "binary_accuracy",
        "categorical_accuracy",
        "sparse_categorical_accuracy",
        "top_k_categorical_accuracy",
        "sparse_top_k_categorical_accuracy",
        "auc",
        "precision",
        "recall",
        "precision_at_recall",
        "recall_at_precision",
        "sensitivity_at_specificity",
        "specificity_at_sensitivity",
        "f1_score",
        "fbeta_score",
        "r2_score",
        "iou",
        "mean_iou",
        "binary_iou",
        "one_hot_iou",
        "one_hot_mean_iou",
        "pearson_correlation",
        "concordance_correlation",
        "cosine_similarity",
    }
)
#: ``half_mse`` is linncore's own loss.
_MINIMISED = frozenset(
    {
        "loss",
        "mse",
        "mae",
        "mape",
        "msle",
        "rmse",
        "mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "mean_squared_logarithmic_error",
        "root_mean_squared_error",
        "logcosh",
        "log_cosh",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
        "kl_divergence",
        "poisson",
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "half_mse",
    }
)


def _direction(monitor: str) -> str:
    """``"min"`` or ``"max"`` for ``mode="auto"``, from the quantity's name as Keras 3 decides it
    from its metrics (``loss`` and error metrics fall, accuracy, AUC and the like rise)."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name in _MINIMISED:
        return "min"
    if name in _MAXIMISED or name.endswith(("_accuracy", "_acc", "_auc")):
        return "max"
    raise ValueError(
        f"monitor: cannot tell whether {monitor!r} should be minimised or maximised; "
        "pass mode='min' or mode='max'"
    )


class EarlyStopping(Callback):
    """Stop training when a monitored quantity has stopped improving (Keras 3's rules).

    An epoch *improves* when its value beats the best so far by more than ``min_delta``
    (below it in ``"min"`` mode, above it in ``"max"`` mode); the first monitored epoch always
    does.  A counter grows by one every epoch and goes back to zero on an improvement that also
    beats ``baseline`` (when one is given); training stops at an epoch that does not improve once
    the counter has reached ``patience`` (never at the first epoch).  So with a ``baseline``
    that is never beaten, training stops after ``patience`` epochs, whatever the progress below
    it.  With ``restore_best_weights`` the best epoch's weights are put back at the end of
    training, also when stopping never triggered.

    When the monitored quantity is not logged (``val_loss`` without validation data), every
    epoch warns, naming the quantity and those available, and nothing stops, as in Keras.

    Parameters
    ----------
    monitor : str
        ``"val_loss"`` (default), ``"loss"`` or any quantity in the epoch's logs.
    min_delta : float
        Smallest change that counts as an improvement (default 0; its sign is ignored).
    patience : int
        Epochs without improvement before stopping (default 0, as Keras).
    verbose : int
        1 prints when stopping and restoring (default 0).
    mode : {"auto", "min", "max"}
        ``"auto"`` (default) minimises losses and errors and maximises accuracies, AUC and
        the like, as Keras; for other names pass ``"min"`` or ``"max"``.  An unknown mode
        warns and means ``"auto"``, as in Keras.
    baseline : float, optional
        A value to beat: until an epoch beats it, the counter is never reset.
    restore_best_weights : bool
        Default False.
    start_from_epoch : int
        Epochs to wait before monitoring starts (default 0).

    Examples
    --------
    >>> EarlyStopping(monitor="loss", patience=3)  # doctest: +NORMALIZE_WHITESPACE
    EarlyStopping(monitor='loss', patience=3, min_delta=0.0, mode='min', baseline=None,
                  restore_best_weights=False)
    >>> EarlyStopping(monitor="val_accuracy").mode
    'max'
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(
                f"monitor: expected a logged quantity such as 'val_loss', got {monitor!r}"
            )
        self.monitor = monitor
        self.min_delta = abs(finite_float(min_delta, "min_delta"))
        self.patience = non_negative_int(patience, "patience")
        self.verbose = verbose
        if mode not in ("auto", "min", "max"):
            warnings.warn(
                f"EarlyStopping: mode {mode!r} is unknown; using 'auto' (expected "
                "'auto', 'min' or 'max')",
                UserWarning,
                stacklevel=2,
            )
            mode = "auto"
        self.mode = _direction(monitor) if mode == "auto" else mode
        self.baseline = None if baseline is None else finite_float(baseline, "baseline")
        self.restore_best_weights = flag(restore_best_weights, "restore_best_weights")
        self.start_from_epoch = non_negative_int(start_from_epoch, "start_from_epoch")
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
            f"min_delta={self.min_delta}, mode={self.mode!r}, baseline={self.baseline}, "
            f"restore_best_weights={self.restore_best_weights})"
        )

    def _beats(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None:
            available = ", ".join(logs or {}) or "none"
            warnings.warn(
                f"EarlyStopping: monitors {self.monitor!r}, which is not logged "
                f"(available: {available}); it will not stop training",
                UserWarning,
                stacklevel=2,
            )
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._beats(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._beats(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring weights from the end of the best epoch: {self.best_epoch + 1}")
            self.model.set_weights(self.best_weights)


class LambdaCallback(Callback):
    """A callback from plain functions.

    For example ``LambdaCallback(on_epoch_end=lambda e, logs: ...)``.
    """

    def __init__(
        self,
        on_epoch_begin: Callable | None = None,
        on_epoch_end: Callable | None = None,
        on_train_begin: Callable | None = None,
        on_train_end: Callable | None = None,
    ) -> None:
        for name, fn in (
            ("on_epoch_begin", on_epoch_begin),
            ("on_epoch_end", on_epoch_end),
            ("on_train_begin", on_train_begin),
            ("on_train_end", on_train_end),
        ):
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"{name}: expected a callable, got {type(fn).__name__}")
                setattr(self, name, fn)


class ProgressLogger(Callback):
    """The progress display of ``fit`` (see :mod:`linncore._util.progress` for its forms).

    ``verbose=1``: on a terminal a bar with the elapsed time, the ETA, epochs per second and
    the last losses (tqdm's bar when tqdm is installed); elsewhere the first epoch's line, one
    every tenth of the run, and always the last epoch's.  ``verbose=2``: a line per epoch.  A
    line reads ``Epoch 3/100 - 0.42 ms/epoch - loss: 1.2345e-02 - val_loss: 2.3456e-02``.
    At the end it says why training stopped early (``stopped early at epoch N (best epoch M,
    its weights restored)``) and how long it took.

    Parameters
    ----------
    epochs : int
        The epochs ``fit`` was asked for.
    verbose : int
        1 or 2, as ``fit``'s.
    stream : file-like, optional
        Default ``sys.stdout`` when training starts.
    history : History, optional
        The run's history, to report a stop reason ``fit`` records (divergence, a callback).
    callbacks : sequence, optional
        The run's other callbacks, to report which early stopping ended it.
    """

    def __init__(
        self,
        epochs: int,
        verbose: int = 1,
        stream: Any = None,
        *,
        history: History | None = None,
        callbacks: Any = (),
    ) -> None:
        self.epochs = epochs
        self.verbose = verbose
        self.stream = stream
        self.history = history
        self.callbacks = list(callbacks)
        self._progress: Progress | None = None
        self._run = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._progress = Progress(self.epochs, self.verbose, "epoch", self.stream)
        self._run = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        values = dict(logs or {})
        self._run = epoch + 1
        assert self._progress is not None, "on_train_begin opens the display"
        self._progress.update(
            epoch + 1,
            lambda: " - ".join(
                f"{k}: {metric(v)}" for k, v in values.items() if isinstance(v, float)
            ),
        )

    def _stop_message(self) -> str | None:
        for cb in self.callbacks:
            if isinstance(cb, EarlyStopping) and getattr(cb, "stopped_epoch", 0) > 0:
                restored = cb.restore_best_weights and cb.best_weights is not None
                return (
                    f"stopped early at epoch {cb.stopped_epoch + 1} "
                    f"(best epoch {cb.best_epoch + 1}, "
                    f"its weights {'restored' if restored else 'not restored'})"
                )
        reason = getattr(self.history, "stop_reason", None)
        if reason:
            diverged = getattr(self.history, "diverged", False)
            return f"training diverged: {reason}" if diverged else reason
        for cb in self.callbacks:
            if (
                isinstance(cb, EarlyStopping)
                and cb.restore_best_weights
                and cb.best_weights is not None
                and cb.best_epoch + 1 != self._run
            ):
                return f"weights restored from the best epoch, {cb.best_epoch + 1}"
        return None

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._progress is None:
            return
        elapsed = self._progress.elapsed
        messages = [m for m in (self._stop_message(),) if m]
        timing = f"trained {self._run} epoch{'' if self._run == 1 else 's'} in {seconds(elapsed)}"
        if self._run:
            timing += f" ({per_unit(elapsed / self._run, 'epoch')})"
        self._progress.close([*messages, timing])
        self._progress = None
