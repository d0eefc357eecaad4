"""The ablation harness's model object: dense blocks on a dataset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._util.codes import ACTIVATIONS
from .._util.validate import choice, flag, positive_int, seed_value
from ..engine.callbacks import History
from ..engine.layers import BatchNormalization, Dense
from ..engine.network import Network
from .datasets import BaseDataset
from .fit_history import FitHistory

__all__ = ["LinearBlockModel"]


class LinearBlockModel:
    """Dense blocks ``Dense -> activation`` sized for a dataset, with a final linear
    ``Dense`` when the last block's width differs from the dataset's output width.

    Layers are named ``dense0``, ``dense1``, ... (the names a :class:`PrecisionDict` uses).

    Parameters
    ----------
    dataset : BaseDataset
    num_hidden : sequence of int
        Widths of the hidden blocks (default ``[64, 64]``; ``[]`` is one dense layer).
    activation : str or None
        The blocks' activation (None: linear).
    use_bias : bool
    seed : int, optional
        Seeds the initial weights; :meth:`reinitialize_weights` draws the same ones again.
    use_batchnorm : bool
        Batch normalisation after each block's activation (Keras's defaults: momentum 0.99,
        epsilon 1e-3; batch statistics in training, moving averages for inference).  Such a
        network folds the normalisation into the following layer when written to ``.linn``;
        its instrumented runs need ``compute_analytic_hessian=False`` (no exact Hessian of
        batch normalisation yet).
    clip : bool
        Instrument-style clipping (default False for research runs).
    dtype : {"float64", "float32"}
        Default float64, so that metric series can be compared to 1e-9.

    Examples
    --------
    >>> from linncore import LinearTeacherDataset
    >>> model = LinearBlockModel(LinearTeacherDataset(64, 4, 2, seed=0), num_hidden=[8], seed=0)
    >>> [layer.name for layer in model.network.layers]
    ['dense0', 'dense1']
    """

    def __init__(
        self,
        dataset: BaseDataset,
        num_hidden: Sequence[int] = (64, 64),
        activation: str | None = None,
        use_bias: bool = True,
        seed: int | None = None,
        use_batchnorm: bool = False,
        clip: bool = False,
        dtype: str = "float64",
        name: str = "LinearBlockModel",
    ) -> None:
        if not isinstance(dataset, BaseDataset):
            raise TypeError(f"dataset: expected a BaseDataset, got {type(dataset).__name__}")
        self.dataset = dataset
        self.num_hidden = [positive_int(w, f"num_hidden[{i}]") for i, w in enumerate(num_hidden)]
        # checked here, also when no hidden block would use it
        self.activation = (
            "linear" if activation is None else choice(activation, ACTIVATIONS, "activation")
        )
        self.use_bias = flag(use_bias, "use_bias")
        self.use_batchnorm = flag(use_batchnorm, "use_batchnorm")
        self.seed = seed_value(seed)
        self.clip = flag(clip, "clip")
        self.dtype = dtype
        self.name = name
        self.network = self._build()

    def _build(self) -> Network:
        d_in, d_out = self.dataset.X.shape[1], self.dataset.Y.shape[1]
        rng = np.random.default_rng(self.seed)
        widths = [d_in] + self.num_hidden
        layers: list[Dense | BatchNormalization] = []
        for i in range(len(self.num_hidden)):
            layers.append(
                Dense((widths[i], widths[i + 1]), self.activation, has_bias=self.use_bias, seed=rng)
            )
            if self.use_batchnorm:
                layers.append(BatchNormalization())
        if widths[-1] != d_out or not layers:
            layers.append(Dense((widths[-1], d_out), "linear", has_bias=self.use_bias, seed=rng))
        return Network(layers, clip=self.clip, dtype=self.dtype)

    @property
    def input_shape(self) -> tuple[int]:
        return (self.dataset.X.shape[1],)

    @property
    def output_shape(self) -> tuple[int]:
        return (self.dataset.Y.shape[1],)

    def reinitialize_weights(self) -> None:
        """Draw the initial weights again from the model's seed: a baseline and a controlled
        run then start from identical weights."""
        fresh = self._build()
        self.network.set_weights(fresh.get_weights())

    def summary(self) -> str:
        """Print and return the layer table."""
        text = f"{self.name} on {self.dataset!r}\n{self.network.summary_text()}"
        print(text)
        return text

    def predict(self, X: Any) -> np.ndarray:
        return self.network.predict(X)

    def train(
        self,
        X: Any = None,
        Y: Any = None,
        epochs: int = 10,
        batch_size: int = 32,
        optimizer: Any = "sgd",
        loss: str = "mse",
        **kwargs: Any,
    ) -> History:
        """Plain training with :meth:`Network.fit` (defaults: the dataset, SGD, Keras's mse)."""
        X = self.dataset.X if X is None else X
        Y = self.dataset.Y if Y is None else Y
        kwargs.setdefault("verbose", 0)
        return self.network.fit(
            X, Y, epochs=epochs, batch_size=batch_size, optimizer=optimizer, loss=loss, **kwargs
        )

    def train_instrumented(self, X: Any = None, Y: Any = None, **kwargs: Any) -> FitHistory:
        """:func:`linncore.train_instrumented` on this model (defaults: the dataset, and its
        teacher matrix as ``reference_A`` when the model is linear)."""
        from .instrumented import train_instrumented

        X = self.dataset.X if X is None else X
        Y = self.dataset.Y if Y is None else Y
        teacher = getattr(self.dataset, "A", None)  # only teacher datasets carry one
        if (
            "reference_A" not in kwargs
            and teacher is not None
            and all(layer.activation == "linear" for layer in self.network.layers)
        ):
            kwargs["reference_A"] = teacher
        return train_instrumented(self.network, X, Y, **kwargs)
