"""Estimators in the conventions of other libraries: :class:`LinnRegressor` for scikit-learn."""

from .regressor import LinnRegressor, NotFittedError

__all__ = ["LinnRegressor", "NotFittedError"]
