"""LinnRegressor: scikit-learn's estimator protocol without scikit-learn at runtime, and
(optionally) scikit-learn's own checks, Pipeline, GridSearchCV and cross_val_score."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

import linncore
from linncore import LinnRegressor
from linncore.estimators import NotFittedError


def _data(n: int = 160, outputs: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, size=(n, 3))
    Y = (
        np.stack([np.sin(X[:, 0]) + 0.5 * X[:, 1] + 10.0 * k for k in range(outputs)], axis=1)
        * 20.0
    )
    return X, (Y[:, 0] if outputs == 1 else Y)


def _fast(**kw) -> LinnRegressor:
    return LinnRegressor(
        **{
            "hidden_layer_sizes": (16,),
            "epochs": 150,
            "learning_rate": 0.01,
            "random_state": 0,
            **kw,
        }
    )


def test_core_imports_without_scikit_learn():
    code = "import sys, linncore; linncore.LinnRegressor(); assert 'sklearn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_constructor_stores_arguments_as_given_and_params_round_trip():
    sizes = [8, "not checked yet"]
    est = LinnRegressor(hidden_layer_sizes=sizes, learning_rate=-1)
    assert est.hidden_layer_sizes is sizes and est.learning_rate == -1  # __init__ validates nothing
    params = est.get_params()
    assert set(params) == {
        "hidden_layer_sizes",
        "activation",
        "output_activation",
        "epochs",
        "batch_size",
        "learning_rate",
        "optimizer",
        "loss",
        "clip",
        "validation_split",
        "patience",
        "scale",
        "random_state",
        "dtype",
        "verbose",
    }
    twin = LinnRegressor(**params)
    assert twin.get_params() == params
    assert est.set_params(epochs=3, clip=False) is est and est.epochs == 3 and est.clip is False
    with pytest.raises(ValueError, match="Invalid parameter 'epoch' for estimator LinnRegressor"):
        est.set_params(epoch=3)
    assert repr(LinnRegressor(epochs=7)) == "LinnRegressor(epochs=7)"


def test_fit_returns_self_and_sets_fitted_attributes_only():
    X, y = _data()
    est = _fast()
    before = set(vars(est))
    assert est.fit(X, y) is est
    public = {k for k in set(vars(est)) - before if not k.startswith("_")}
    assert public == {"network_", "n_features_in_", "n_outputs_", "history_", "n_iter_"}
    assert est.n_features_in_ == 3 and est.n_outputs_ == 1 and est.n_iter_ == 150
    assert len(est.history_["loss"]) == 150


def test_predict_is_in_the_units_of_y_and_score_is_r2():
    X, y = _data()
    est = _fast().fit(X, y)
    pred = est.predict(X)
    assert pred.shape == (160,) and pred.dtype == np.float64
    r2 = 1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)
    assert est.score(X, y) == pytest.approx(r2, rel=1e-12)
    assert r2 > 0.9  # y spans about +-40: the scaling maps it onto the clipped network's range
    w = np.r_[np.ones(80), np.zeros(80)]
    half = 1.0 - np.sum((y[:80] - pred[:80]) ** 2) / np.sum((y[:80] - y[:80].mean()) ** 2)
    assert est.score(X, y, sample_weight=w) == pytest.approx(half, rel=1e-12)


def test_multi_output_and_without_scaling():
    X, Y = _data(outputs=2)
    est = _fast().fit(X, Y)
    assert est.predict(X).shape == (160, 2) and est.n_outputs_ == 2
    Xs, ys = X / 3.0, np.sin(X[:, 0]) * 0.5
    plain = _fast(scale=False).fit(Xs, ys)
    assert plain.score(Xs, ys) > 0.8


def test_same_random_state_same_model_and_early_stopping_restores_the_best():
    X, y = _data()
    a, b = _fast().fit(X, y), _fast().fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    es = _fast(epochs=2000, patience=3, validation_split=0.2).fit(X, y)
    assert es.n_iter_ < 2000 and "val_loss" in es.history_


def test_unfitted_and_bad_input_name_what_is_wrong():
    X, y = _data()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        LinnRegressor().predict(X)
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    with pytest.raises(ValueError, match="requires y to be passed"):
        _fast().fit(X, None)
    with pytest.raises(ValueError, match="Reshape your data"):
        _fast().fit(X[:, 0], y)
    with pytest.raises(ValueError, match="NaN or inf"):
        _fast().fit(np.where(X > 2.9, np.nan, X), y)
    with pytest.raises(ValueError, match=r"y: expected 160 targets .* got 159"):
        _fast().fit(X, y[:-1])
    with pytest.raises(
        ValueError, match=r"hidden_layer_sizes\[1\]: expected a positive integer, got 0"
    ):
        _fast(hidden_layer_sizes=(4, 0)).fit(X, y)
    with pytest.raises(ValueError, match=r"activation\[0\]: expected one of"):
        _fast(activation=("tanhh",)).fit(X, y)
    with pytest.raises(ValueError, match="optimizer: expected 'adam' or 'sgd'"):
        _fast(optimizer="rmsprop").fit(X, y)
    est = _fast(epochs=2).fit(X, y)
    with pytest.raises(
        ValueError, match="X has 2 features, but LinnRegressor is expecting 3 features"
    ):
        est.predict(X[:, :2])


def test_feature_names_of_a_data_frame_are_kept_and_checked():
    class Frame:  # the two things scikit-learn reads of a DataFrame
        def __init__(self, data, columns):
            self.data, self.columns = np.asarray(data), list(columns)

        def __array__(self, dtype=None, copy=None):
            return self.data if dtype is None else self.data.astype(dtype)

    X, y = _data()
    est = _fast(epochs=2).fit(Frame(X, ["a", "b", "c"]), y)
    assert list(est.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="feature names should match"):
        est.predict(Frame(X, ["a", "c", "b"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.predict(Frame(X, ["a", "b", "c"]))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        est.predict(X)


def test_pickle_keeps_the_network_working():
    X, y = _data()
    est = _fast().fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    back.network_.layers[0].weight[0, 0] = 0.5  # the layers view the restored parameter vector
    assert back.network_.theta[0] == 0.5


def test_exported_from_the_package():
    assert "LinnRegressor" in linncore.__all__ and linncore.LinnRegressor is LinnRegressor


# -- scikit-learn itself (optional) ---------------------------------------------------------
@pytest.mark.optional
def test_passes_scikit_learns_check_estimator():
    pytest.importorskip("sklearn")
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "does not inherit from BaseEstimator": by design
        results = check_estimator(LinnRegressor(), on_fail=None)
    failed = [
        (r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"
    ]
    assert not failed
    assert sum(r["status"] == "passed" for r in results) >= 40


@pytest.mark.optional
def test_works_in_pipeline_grid_search_and_cross_val_score():
    pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _data(n=200)
    pipe = make_pipeline(StandardScaler(), _fast())
    assert pipe.fit(X, y).score(X, y) > 0.9
    assert clone(_fast(epochs=5)).get_params() == _fast(epochs=5).get_params()
    grid = GridSearchCV(
        _fast(), {"hidden_layer_sizes": [(2,), (16,)], "learning_rate": [1e-4, 0.01]}, cv=3
    )
    grid.fit(X, y)
    assert grid.best_params_ == {"hidden_layer_sizes": (16,), "learning_rate": 0.01}
    assert isinstance(grid.best_estimator_, LinnRegressor)
    scores = cross_val_score(_fast(), X, y, cv=KFold(4, shuffle=True, random_state=0))
    assert scores.shape == (4,) and np.all(scores > 0.8)
    nested = GridSearchCV(pipe, {"linnregressor__epochs": [10, 150]}, cv=3).fit(X, y)
    assert nested.best_params_ == {"linnregressor__epochs": 150}
