"""NumPy twin of ``prepare_train`` (linncore/_core/train.pxi): the epochs of one fit.

The run checks its arrays once and keeps them; each epoch is :func:`train_epoch` on them, the
validation loss :func:`net_loss`, the order of an epoch ``rng.shuffle`` of ``arange(N)``, and
the undo copy plain copies.  The compiled run gives the same values, draws and bits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .dense import _check_step_args, net_loss, train_epoch

__all__ = ["TrainRun", "prepare_train"]


class TrainRun:
    """The epochs of one fit, with every array checked once (see :func:`prepare_train`)."""

    def __init__(
        self,
        spec: Any,
        theta: np.ndarray,
        X: np.ndarray,
        Y: np.ndarray,
        batch_size: int,
        loss: int,
        m: np.ndarray,
        v: np.ndarray,
        clip_params: bool,
        bn_state: np.ndarray | None,
        quant: Any,
        X_val: np.ndarray | None,
        Y_val: np.ndarray | None,
        rng: np.random.Generator | None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
        _check_step_args(spec, quant, bn_state, loss)
        if (X_val is None) != (Y_val is None):
            raise ValueError("X_val, Y_val: expected both or neither")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng: expected a numpy.random.Generator or None, got {type(rng).__name__}"
            )
        self._spec, self._theta, self._X, self._Y = spec, theta, X, Y
        self._batch_size, self._loss, self._m, self._v = batch_size, loss, m, v
        self._clip, self._bn_state, self._quant = clip_params, bn_state, quant
        self._X_val, self._Y_val, self._rng = X_val, Y_val, rng
        self._order = np.arange(X.shape[0], dtype=np.int64)
        self._perm = None if rng is None else self._order.copy()  # samples' order until shuffled
        self._undo = [a.copy() for a in (theta, m, v) + (() if bn_state is None else (bn_state,))]

    @property
    def perm(self) -> np.ndarray | None:
        """A copy of the epoch's order (None without rng)."""
        return None if self._perm is None else self._perm.copy()

    def shuffle(self) -> None:
        """perm := ``arange(N)`` shuffled by rng."""
        if self._rng is None or self._perm is None:
            raise ValueError("shuffle: this run was prepared without a generator (rng=None)")
        np.copyto(self._perm, self._order)
        self._rng.shuffle(self._perm)

    def _live(self) -> list[np.ndarray]:
        state = () if self._bn_state is None else (self._bn_state,)
        return [self._theta, self._m, self._v, *state]

    def save(self) -> None:
        """Copy theta, m, v and the batch-norm state aside (what :meth:`restore` puts back)."""
        for kept, live in zip(self._undo, self._live()):
            np.copyto(kept, live)

    def restore(self) -> None:
        """Put back theta, m, v and the batch-norm state as the last :meth:`save` found them."""
        for kept, live in zip(self._undo, self._live()):
            np.copyto(live, kept)

    def epoch(
        self, optimizer: Any, step: int, *, rail: np.ndarray | None = None
    ) -> tuple[int, float, int, int]:
        """One epoch, :func:`train_epoch` on this run's arrays, in the order ``perm`` holds when
        the run has a generator; returns (status, loss_sum, n_done, step)."""
        return train_epoch(
            self._spec,
            self._theta,
            self._X,
            self._Y,
            perm=self._perm,
            batch_size=self._batch_size,
            loss=self._loss,
            optimizer=optimizer,
            m=self._m,
            v=self._v,
            step=step,
            clip_params=self._clip,
            bn_state=self._bn_state,
            quant=self._quant,
            rail=rail,
        )

    def val_loss(self) -> float:
        """:func:`net_loss` of (X_val, Y_val) at the current parameters and batch-norm state."""
        if self._X_val is None:
            raise ValueError("val_loss: this run was prepared without validation data")
        return net_loss(
            self._spec,
            self._theta,
            self._X_val,
            self._Y_val,
            loss=self._loss,
            bn_state=self._bn_state,
        )


def prepare_train(
    spec: Any,
    theta: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    batch_size: int,
    loss: int,
    m: np.ndarray,
    v: np.ndarray,
    clip_params: bool,
    bn_state: np.ndarray | None = None,
    quant: Any = None,
    X_val: np.ndarray | None = None,
    Y_val: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> TrainRun:
    """The epochs of one fit over fixed arrays, checked once: a :class:`TrainRun` whose
    ``epoch(optimizer, step, *, rail=None)`` is :func:`train_epoch` on them (in the order ``perm``
    that ``shuffle()`` draws from rng, when rng is given), ``val_loss()`` :func:`net_loss` of
    (X_val, Y_val), and ``save()`` / ``restore()`` the undo copy of theta, m, v and bn_state."""
    return TrainRun(
        spec, theta, X, Y, batch_size, loss, m, v, clip_params, bn_state, quant, X_val, Y_val, rng
    )
