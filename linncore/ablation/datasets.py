"""Datasets for ablation studies."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._util.validate import as_float_array, check_finite, finite_float, positive_int, seed_value

__all__ = ["BaseDataset", "LinearTeacherDataset"]


class BaseDataset:
    """Inputs ``X`` (n, d_in) and targets ``Y`` (n, d_out), checked and kept in float64.

    Examples
    --------
    >>> ds = BaseDataset([[0.0, 1.0], [1.0, 0.0]], [[1.0], [2.0]])
    >>> ds.input_shape, ds.output_shape
    ((2, 2), (2, 1))
    """

    def __init__(self, X: Any, Y: Any) -> None:
        X = as_float_array(X, "X")
        Y = as_float_array(Y, "Y")
        if X.ndim != 2 or Y.ndim != 2:
            raise ValueError(f"X, Y: expected 2-D arrays, got shapes {X.shape} and {Y.shape}")
        if X.shape[0] != Y.shape[0] or X.shape[0] == 0:
            raise ValueError(
                f"Y: expected {X.shape[0]} samples (as many as X, at least one), got {Y.shape[0]}"
            )
        check_finite(X, "X")
        check_finite(Y, "Y")
        self.X, self.Y = np.ascontiguousarray(X), np.ascontiguousarray(Y)

    @property
    def input_shape(self) -> tuple[int, int]:
        return self.X.shape

    @property
    def output_shape(self) -> tuple[int, int]:
        return self.Y.shape

    def __len__(self) -> int:
        return self.X.shape[0]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n={len(self)}, d_in={self.X.shape[1]}, d_out={self.Y.shape[1]})"
        )


class LinearTeacherDataset(BaseDataset):
    """``Y = X A`` (plus optional Gaussian noise), ``X`` uniform on ``[-input_scale, input_scale]``.

    Parameters
    ----------
    n, d_in, d_out : int
    noise : float
        Standard deviation of the additive noise (default 0).
    teacher_scale : float
        ``A`` is uniform on ``[-teacher_scale, teacher_scale]`` (default 0.5, inside the
        instrument's [-1, 1] weight range).
    input_scale : float
        Default 1.
    A : array_like, optional
        A given teacher ``(d_in, d_out)`` instead of a random one.
    seed : int, optional

    Examples
    --------
    >>> ds = LinearTeacherDataset(100, 4, 2, seed=0)
    >>> bool(np.allclose(ds.X @ ds.A, ds.Y))
    True
    """

    def __init__(
        self,
        n: int = 1000,
        d_in: int = 4,
        d_out: int = 2,
        *,
        noise: float = 0.0,
        teacher_scale: float = 0.5,
        input_scale: float = 1.0,
        A: Any = None,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        n, d_in, d_out = (
            positive_int(n, "n"),
            positive_int(d_in, "d_in"),
            positive_int(d_out, "d_out"),
        )
        noise = finite_float(noise, "noise", lo=0.0)
        teacher_scale = finite_float(teacher_scale, "teacher_scale", lo=0.0)
        input_scale = finite_float(input_scale, "input_scale", lo=0.0, lo_open=True)
        seed = seed_value(seed)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        if A is None:
            A = rng.uniform(-teacher_scale, teacher_scale, size=(d_in, d_out))
        A = as_float_array(A, "A")
        if A.shape != (d_in, d_out):
            raise ValueError(f"A: expected shape ({d_in}, {d_out}), got {A.shape}")
        X = rng.uniform(-input_scale, input_scale, size=(n, d_in))
        Y = X @ A
        if noise:
            Y = Y + rng.normal(0.0, noise, size=Y.shape)
        super().__init__(X, Y)
        self.A = A.copy()
        self.noise = noise
