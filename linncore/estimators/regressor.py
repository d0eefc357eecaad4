"""A scikit-learn estimator around :class:`~linncore.Network`, without scikit-learn at runtime.

:class:`LinnRegressor` follows scikit-learn's estimator protocol by construction, not by
inheritance: the constructor stores its arguments as given and checks nothing;
``get_params``/``set_params`` read and write them; ``fit(X, y)`` checks the data, sets the
fitted attributes (names ending in ``_``) and returns the estimator; ``predict`` and
``score`` (R^2) refuse an unfitted estimator with :class:`NotFittedError` (a ``ValueError``
and an ``AttributeError``, as scikit-learn's).  ``Pipeline``, ``GridSearchCV``,
``cross_val_score`` and ``clone`` need nothing more.  Only ``__sklearn_tags__``, which
scikit-learn alone calls, imports scikit-learn.

The data are scaled as :class:`~linncore.LinnModel` scales them: every input and target
column mapped onto ``[-1, 1]`` by its training minimum and maximum (a constant column maps to
0), so the clipped network of the instrument can represent the targets.
"""

from __future__ import annotations

import inspect
import numbers
import sys
import warnings
from typing import Any

import numpy as np

from .._util.validate import non_negative_int, positive_int
from ..engine.callbacks import EarlyStopping
from ..engine.layers import Dense, all_activations
from ..engine.network import Network
from ..engine.optimizers import SGD, Adam
from ..vendor.linn_model import _Scaling, _scaling_for

__all__ = ["LinnRegressor", "NotFittedError"]

_OPTIMIZERS = {"adam": Adam, "sgd": SGD}


class NotFittedError(ValueError, AttributeError):
    """``predict`` or ``score`` before ``fit`` (the bases of scikit-learn's error of that name)."""


class LinnRegressor:
    """A dense network regressor with scikit-learn's interface.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
        Widths of the hidden layers (default ``(32,)``); ``()`` is a single dense layer.
    activation : str or tuple of str
        The hidden layers' activation (default ``"tanh"``), or one per hidden layer; one of
        :func:`linncore.all_activations`.
    output_activation : str
        The output layer's activation (default ``"linear"``).
    epochs : int
        Passes over the training data (default 200).
    batch_size : int
        Samples per step (default 32).
    learning_rate : float
        Of the optimizer (default 0.001).
    optimizer : {"adam", "sgd"}
        Keras's rules (default ``"adam"``).
    loss : {"mse", "mae", "half_mse"}
        Training loss (default ``"mse"``).
    clip : bool
        Instrument-style clipping of every layer's output and every parameter to
        ``[-1, 1]`` (default True, as :class:`~linncore.LinnModel`).
    validation_split : float
        In ``[0, 1)``: the last fraction of the samples held out as validation data
        (default 0).
    patience : int or None
        Early stopping after this many epochs without improvement of ``val_loss`` (or of
        ``loss`` without validation data), restoring the best epoch's weights; None (default)
        trains every epoch.
    scale : bool
        Map every input and target column onto ``[-1, 1]`` by its training range (default
        True); predictions are mapped back.
    random_state : int, numpy.random.Generator or None
        Seeds the initial weights and the shuffling; an int makes ``fit`` reproducible.
    dtype : {"float32", "float64"}
        Training precision (default float32, as Keras).
    verbose : int
        ``fit``'s progress display: 0 silent (default), 1 or 2.

    Attributes
    ----------
    network_ : Network
        The trained network (on scaled data).
    n_features_in_ : int
    n_outputs_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names (a DataFrame).
    history_ : dict of str to list of float
        ``loss`` (and ``val_loss``) per epoch run.
    n_iter_ : int
        Epochs run.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(-2, 2, 200)[:, None]
    >>> y = np.sin(X).ravel()
    >>> est = LinnRegressor((16,), epochs=300, learning_rate=0.01, random_state=0)
    >>> est.fit(X, y).predict(X[:3]).shape
    (3,)
    >>> bool(est.score(X, y) > 0.95)
    True
    >>> est.get_params()["hidden_layer_sizes"]
    (16,)
    """

    # Set by fit and absent before it (scikit-learn's protocol); declared for the type checker.
    network_: Network
    n_features_in_: int
    n_outputs_: int
    feature_names_in_: np.ndarray
    history_: dict[str, list[float]]
    n_iter_: int
    _single_output: bool
    _input_scaling: _Scaling | None
    _output_scaling: _Scaling | None

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (32,),
        activation: Any = "tanh",
        output_activation: str = "linear",
        *,
        epochs: int = 200,
        batch_size: int = 32,
        learning_rate: float = 0.001,
        optimizer: str = "adam",
        loss: str = "mse",
        clip: bool = True,
        validation_split: float = 0.0,
        patience: int | None = None,
        scale: bool = True,
        random_state: Any = None,
        dtype: str = "float32",
        verbose: int = 0,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.loss = loss
        self.clip = clip
        self.validation_split = validation_split
        self.patience = patience
        self.scale = scale
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose

    # -- the parameter protocol ----------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments as stored (``deep`` is accepted; nothing is nested)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> LinnRegressor:
        """Set constructor arguments by name; returns the estimator.

        Raises
        ------
        ValueError
            For a name that is not a constructor argument.
        """
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"Invalid parameter {key!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {sorted(valid)!r}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self"
        }
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if not _same(v, defaults[k])]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self) -> Any:
        # only scikit-learn calls this, so scikit-learn is installed when it runs
        from sklearn.utils import InputTags, RegressorTags, Tags, TargetTags

        return Tags(
            estimator_type="regressor",
            target_tags=TargetTags(required=True, multi_output=True),
            regressor_tags=RegressorTags(),
            input_tags=InputTags(two_d_array=True),
        )

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "network_")

    # -- data ----------------------------------------------------------------------------
    def _check_X(self, X: Any, *, reset: bool) -> np.ndarray:
        name = type(self).__name__
        if _is_sparse(X):
            raise TypeError(
                f"X: {name} does not take sparse input (got {type(X).__name__}); "
                "pass a dense array, e.g. X.toarray()"
            )
        names = _feature_names(X)
        if reset:
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        else:
            fitted = getattr(self, "feature_names_in_", None)
            if names is not None and fitted is None:
                warnings.warn(
                    f"X has feature names, but {name} was fitted without feature names",
                    UserWarning,
                    stacklevel=3,
                )
            elif names is None and fitted is not None:
                warnings.warn(
                    f"X does not have valid feature names, but {name} was fitted with feature "
                    "names",
                    UserWarning,
                    stacklevel=3,
                )
            elif (
                names is not None
                and fitted is not None
                and (len(names) != len(fitted) or np.any(names != fitted))
            ):
                raise ValueError(
                    "X: The feature names should match those that were passed during fit "
                    f"(fitted with {list(fitted)[:8]}, got {list(names)[:8]})"
                )
        arr = _as_real(X, "X")
        if arr.ndim == 1:
            raise ValueError(
                f"X: expected a 2-D array (samples, features), got a 1-D array of length "
                f"{arr.shape[0]}. Reshape your data: X.reshape(-1, 1) for one feature, "
                "X.reshape(1, -1) for one sample"
            )
        if arr.ndim != 2:
            raise ValueError(f"X: expected a 2-D array (samples, features), got shape {arr.shape}")
        for axis, what in ((0, "sample"), (1, "feature")):
            if arr.shape[axis] == 0:
                raise ValueError(
                    f"X: found 0 {what}(s) (shape={arr.shape}) while a minimum of 1 is required."
                )
        _check_finite(arr, "X")
        if not reset and arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {arr.shape[1]} features, but {name} is expecting {self.n_features_in_} "
                "features as input."
            )
        return arr

    def _check_y(self, y: Any, n: int) -> np.ndarray:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        arr = _as_real(y, "y")
        if arr.ndim not in (1, 2) or arr.shape[-1] == 0:
            raise ValueError(
                f"y: expected a 1-D array of targets or a 2-D array (samples, outputs), "
                f"got shape {arr.shape}"
            )
        if arr.shape[0] != n:
            raise ValueError(
                f"y: expected {n} targets (as many as X has samples), got {arr.shape[0]}"
            )
        _check_finite(arr, "y")
        return arr

    def _require_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise _not_fitted_error()(
                f"This {type(self).__name__} instance is not fitted yet: call 'fit' with "
                "training data before 'predict' or 'score'"
            )

    # -- the network ---------------------------------------------------------------------
    def _layers(self, n_in: int, n_out: int, rng: np.random.Generator) -> list[Dense]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (tuple, list)):
            raise ValueError(
                f"hidden_layer_sizes: expected a tuple of positive widths, got {sizes!r:.60}"
            )
        widths = [positive_int(w, f"hidden_layer_sizes[{i}]") for i, w in enumerate(sizes)]
        acts = self.activation
        if isinstance(acts, str):
            acts = [acts] * len(widths)
        elif not isinstance(acts, (tuple, list)) or len(acts) != len(widths):
            raise ValueError(
                f"activation: expected one name or {len(widths)} names (one per hidden layer), "
                f"got {acts!r:.60}"
            )
        known = all_activations()
        names = [*acts, self.output_activation]
        for i, act in enumerate(names):
            if act not in known:
                what = "output_activation" if i == len(widths) else f"activation[{i}]"
                raise ValueError(f"{what}: expected one of {known}, got {act!r:.40}")
        dims = [n_in, *widths, n_out]
        return [Dense((dims[i], dims[i + 1]), names[i], seed=rng) for i in range(len(dims) - 1)]

    def _optimizer(self) -> Any:
        name = self.optimizer
        if not isinstance(name, str) or name.lower() not in _OPTIMIZERS:
            raise ValueError(f"optimizer: expected 'adam' or 'sgd', got {name!r:.40}")
        return _OPTIMIZERS[name.lower()](learning_rate=self.learning_rate)

    # -- fit and predict -----------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> LinnRegressor:
        """Train a fresh network on ``(X, y)``; returns the estimator.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        y : array_like of shape (n_samples,) or (n_samples, n_outputs)
        """
        x = self._check_X(X, reset=True)
        t = self._check_y(y, x.shape[0])
        self._single_output = t.ndim == 1
        t2 = t[:, None] if t.ndim == 1 else t
        self.n_features_in_ = x.shape[1]
        self.n_outputs_ = t2.shape[1]
        patience = None if self.patience is None else non_negative_int(self.patience, "patience")
        if self.scale:
            self._input_scaling = _scaling_for(x, None, "X", "input_data_boundary", "zero")
            self._output_scaling = _scaling_for(t2, None, "y", "output_data_boundary", "zero")
            x, t2 = self._input_scaling.forward(x), self._output_scaling.forward(t2)
        else:
            self._input_scaling = self._output_scaling = None
        init_rng, fit_rng = (
            np.random.default_rng(s) for s in _seed_sequence(self.random_state).spawn(2)
        )
        net = Network(
            self._layers(x.shape[1], t2.shape[1], init_rng), clip=bool(self.clip), dtype=self.dtype
        )
        callbacks: list[Any] = []
        if patience is not None:
            monitor = "val_loss" if self.validation_split else "loss"
            callbacks.append(
                EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True)
            )
        history = net.fit(
            x,
            t2,
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer=self._optimizer(),
            loss=self.loss,
            validation_split=self.validation_split,
            callbacks=callbacks,
            verbose=self.verbose,
            seed=fit_rng,
        )
        self.network_ = net
        self.history_ = {k: list(v) for k, v in history.history.items()}
        self.n_iter_ = len(history.epoch)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions for ``X`` in the units of ``y`` (float64; 1-D when ``y`` was 1-D)."""
        self._require_fitted()
        x = self._check_X(X, reset=False)
        if self._input_scaling is not None:
            x = self._input_scaling.forward(x)
        out = self.network_.predict(x).astype(np.float64)
        if self._output_scaling is not None:
            out = self._output_scaling.inverse(out)
        return out[:, 0] if self._single_output else out

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The coefficient of determination R^2 of ``predict(X)`` against ``y``, averaged over
        the outputs with equal weights (1 for a perfect fit; 0 for predicting the mean; a
        constant target counts 1 when met exactly, else 0)."""
        pred = self.predict(X)
        t = self._check_y(y, pred.shape[0])
        t = t[:, None] if t.ndim == 1 else t
        p = pred[:, None] if pred.ndim == 1 else pred
        if t.shape[1] != p.shape[1]:
            raise ValueError(f"y: expected {p.shape[1]} output column(s), got {t.shape[1]}")
        w = (
            np.ones(t.shape[0])
            if sample_weight is None
            else _as_real(sample_weight, "sample_weight")
        )
        if w.shape != (t.shape[0],):
            raise ValueError(f"sample_weight: expected shape ({t.shape[0]},), got {w.shape}")
        w = w[:, None]
        residual = np.sum(w * (t - p) ** 2, axis=0)
        total = np.sum(w * (t - np.sum(w * t, axis=0) / np.sum(w)) ** 2, axis=0)
        r2 = np.where(
            total > 0,
            1.0 - residual / np.where(total > 0, total, 1.0),
            np.where(residual == 0, 1.0, 0.0),
        )
        return float(np.mean(r2))

    # -- pickling: the network's layers view one parameter vector, so it travels as weights
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        net = state.pop("network_", None)
        if net is not None:
            state["_network_state"] = {
                "layers": [(layer.shape, layer.activation, layer.has_bias) for layer in net.layers],
                "weights": net.get_weights(),
                "clip": net.clip,
                "dtype": net.dtype.name,
            }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        saved = state.pop("_network_state", None)
        self.__dict__.update(state)
        if saved is not None:
            net = Network(
                [
                    Dense(tuple(shape), act, has_bias=bias, seed=0)
                    for shape, act, bias in saved["layers"]
                ],
                clip=saved["clip"],
                dtype=saved["dtype"],
            )
            net.set_weights(saved["weights"])
            self.network_ = net


_BOTH: list[type] = []


def _not_fitted_error() -> type:
    """:class:`NotFittedError`, and also scikit-learn's class of that name when scikit-learn is
    already imported (its checks catch exactly that class); never imports scikit-learn."""
    sk = sys.modules.get("sklearn.exceptions")
    if sk is None or not isinstance(getattr(sk, "NotFittedError", None), type):
        return NotFittedError
    if not _BOTH or _BOTH[0].__mro__[2] is not sk.NotFittedError:
        _BOTH[:] = [
            type("NotFittedError", (NotFittedError, sk.NotFittedError), {"__module__": __name__})
        ]
    return _BOTH[0]


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # arrays and the like
        return False


def _is_sparse(X: Any) -> bool:
    """A SciPy sparse matrix or array, without importing SciPy's sparse module first."""
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def _feature_names(X: Any) -> np.ndarray | None:
    """The string column names of a DataFrame-like ``X``, else None."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray):
        return None
    names = np.asarray(list(columns), dtype=object)
    if names.size and all(isinstance(c, str) for c in names):
        return names
    return None


def _as_real(value: Any, name: str) -> np.ndarray:
    """``value`` as float64, refusing complex numbers and non-numbers with the cause."""
    arr = np.asarray(value)
    if np.iscomplexobj(arr):
        raise ValueError(
            f"{name}: Complex data not supported (got dtype {arr.dtype}); pass real numbers"
        )
    try:
        return np.asarray(arr, dtype=np.float64)
    except TypeError as exc:
        raise TypeError(f"{name}: expected numbers; {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{name}: expected numbers; {exc}") from None


def _check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}: expected finite values, got NaN or inf ({int(bad.sum())} value(s)), "
            f"the first {arr[where]} at index {where if len(where) > 1 else where[0]}"
        )


def _seed_sequence(random_state: Any) -> np.random.SeedSequence:
    """A seed sequence from an int, a NumPy Generator or RandomState, or None (fresh entropy)."""
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(2**31)))
    if (
        isinstance(random_state, numbers.Integral)
        and not isinstance(random_state, bool)
        and int(random_state) >= 0
    ):
        return np.random.SeedSequence(int(random_state))
    raise ValueError(
        f"random_state: expected a non-negative int, a NumPy Generator or RandomState, or None, "
        f"got {random_state!r:.40}"
    )
