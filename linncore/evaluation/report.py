"""Deviation reports: how far predictions land from their targets, sample by sample.

The measure and its buckets
---------------------------
For a sample ``i`` and output column ``j`` with prediction ``p`` and target ``y`` the
*deviation* is a percentage::

    d_ij = 100 * |p - y| / max(|y|, floor_j)        (computed in float64, in that order)

The plain relative error ``|p - y| / |y|`` is undefined at ``y = 0`` and explodes near it, so
the denominator never drops below ``floor_j``.  By default ``floor_j = floor_fraction *
scale_j`` with ``floor_fraction = 0.05`` and ``scale_j`` the range ``max - min`` of column
``j``'s targets; for a constant column ``scale_j`` is its ``|value|``, and for an all-zero
column it is 1.  A target smaller in magnitude than 5 % of its column's range is thus judged
against 5 % of the range: an absolute error, in the column's own units.  Pass ``floor=`` for
an explicit floor (one number, or one per column).  A non-finite prediction has deviation
``inf``.

Each sample falls in exactly one of seven buckets:

==========  ===================  =========================================
label       deviation ``d`` (%)  meaning
==========  ===================  =========================================
``0-10%``   ``0 <= d < 10``      very close
``10-20%``  ``10 <= d < 20``
``20-30%``  ``20 <= d < 30``
``30-40%``  ``30 <= d < 40``
``40-50%``  ``40 <= d < 50``
``50-100%`` ``50 <= d <= 100``   the only bucket closed on both sides
``100%+``   ``d > 100``          a *failure* (``inf`` included)
==========  ===================  =========================================

The *quality score* is the mean over samples of ``max(0, 100 - d_i)``: 100 when every
prediction is exact, 0 when every deviation is 100 % or more; a sample at 25 % contributes 75.

Several outputs
---------------
With ``m > 1`` output columns a report holds one report per column (``report.columns``,
each over ``d_ij`` of its column) and aggregates them per sample: ``d_i = max_j d_ij`` by
default (a sample counts as good only when all its outputs are; ``combine="mean"`` takes the
mean over columns instead).  Buckets, score, average, failures and worst samples of the
aggregate are those of ``d_i``.

Empty and constant data
-----------------------
Zero samples give a report with empty buckets, zero failures and NaN score and average.
Constant targets are handled by the floor rule above.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util import untrusted as _untrusted
from .._util.atomic import save_figure, write_text_atomic
from .._util.validate import (
    as_float_array,
    check_finite,
    choice,
    finite_float,
    non_negative_int,
    positive_int,
)
from ..engine.callbacks import Callback

__all__ = [
    "BUCKETS",
    "DEFAULT_FLOOR_FRACTION",
    "DeviationReport",
    "ReportFileError",
    "MAX_FILE_BYTES",
    "WorstSample",
    "EvaluationCallback",
    "deviations",
    "evaluate",
    "plot_buckets",
    "plot_predictions",
    "plot_history",
]

#: The seven buckets as ``(label, lower, upper)`` in percent; see the module docstring for
#: which ends are closed.
BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("0-10%", 0.0, 10.0),
    ("10-20%", 10.0, 20.0),
    ("20-30%", 20.0, 30.0),
    ("30-40%", 30.0, 40.0),
    ("40-50%", 40.0, 50.0),
    ("50-100%", 50.0, 100.0),
    ("100%+", 100.0, math.inf),
)
_LOWER_EDGES = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
FAILURE_THRESHOLD = 100.0
DEFAULT_FLOOR_FRACTION = 0.05
_REPORT_FORMAT = "linncore.deviation_report"
_REPORT_VERSION = 1
#: The largest report file read (a report of a million samples is about 60 MB).
MAX_FILE_BYTES = 128 * 1024 * 1024
_MAX_DEPTH = 6  # report -> columns -> report -> expected -> row


class ReportFileError(ValueError):
    """A deviation report (file, text or dict) is malformed or inconsistent; the message names
    the file and the field."""


# -- the measure ---------------------------------------------------------------------------
def _column_floor(y: np.ndarray, floor: Any, floor_fraction: float) -> np.ndarray:
    m = y.shape[1]
    if floor is not None:
        f = as_float_array(floor, "floor")
        if f.ndim == 0:
            f = np.full(m, float(f))
        if f.shape != (m,):
            raise ValueError(
                f"floor: expected one number or {m} (one per output column), got shape {f.shape}"
            )
        if not np.all(np.isfinite(f) & (f > 0)):
            raise ValueError(f"floor: expected positive finite numbers, got {f.tolist()}")
        return f.astype(np.float64)
    if y.shape[0] == 0:
        return np.full(m, np.nan)
    # half the range, which cannot overflow even when the range exceeds the largest float
    half = y.max(axis=0) * 0.5 - y.min(axis=0) * 0.5
    const = half == 0
    half[const] = np.abs(y[0, const]) * 0.5
    half[half == 0] = 0.5
    return floor_fraction * half * 2.0


def deviations(
    Y_pred: Any, Y: Any, *, floor: Any = None, floor_fraction: float = DEFAULT_FLOOR_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample, per-column deviations in percent, and the floor used for each column.

    Parameters
    ----------
    Y_pred, Y : array_like
        Predictions and targets, ``(n, m)`` or ``(n,)`` for one column; ``Y`` finite.
    floor : float or array_like of m floats, optional
        Smallest denominator of each column (positive); default ``floor_fraction * scale``,
        see :mod:`linncore.evaluation.report`.
    floor_fraction : float
        Default 0.05.

    Returns
    -------
    dev : ndarray, shape (n, m)
        ``100 * |p - y| / max(|y|, floor)``; ``inf`` where ``p`` is not finite.
    floor : ndarray, shape (m,)

    Examples
    --------
    >>> dev, floor = deviations([[11.0], [0.1]], [[10.0], [0.0]])
    >>> dev.ravel().tolist(), floor.tolist()
    ([10.0, 20.0], [0.5])
    """
    p, y = _pair(Y_pred, Y)
    ff = finite_float(floor_fraction, "floor_fraction", lo=0.0, lo_open=True)
    f = _column_floor(y, floor, ff)
    return _dev(p, y, f), f


def _dev(p: np.ndarray, y: np.ndarray, f: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        denom = np.maximum(np.abs(y), f)
        d = (100.0 * np.abs(p - y)) / denom
        big = np.isinf(d) & np.isfinite(p)  # 100 |p - y| overflowed: divide first
        d[big] = 100.0 * (np.abs(p - y)[big] / np.broadcast_to(denom, d.shape)[big])
    d[~np.isfinite(p) | np.isnan(d)] = np.inf  # whatever cannot be measured counts as a failure
    return d


def _as_2d(value: Any, name: str) -> np.ndarray:
    arr = as_float_array(value, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(
            f"{name}: expected a 2-D array (samples, columns) or a 1-D one, got shape {arr.shape}"
        )
    return arr


def _pair(Y_pred: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    p = _as_2d(Y_pred, "Y_pred")
    y = as_float_array(Y, "Y")
    if y.ndim == 1 and p.shape[0] == 1 and y.shape[0] == p.shape[1] and p.shape[1] > 1:
        y = y[None, :]  # one sample of a multi-output network
    y = _as_2d(y, "Y")
    if p.shape != y.shape:
        raise ValueError(f"Y: expected the shape of the predictions {p.shape}, got {y.shape}")
    check_finite(y, "Y")
    return p, y


# -- the report ----------------------------------------------------------------------------
@dataclass(frozen=True)
class WorstSample:
    """One of the worst-predicted samples of a report.

    Attributes
    ----------
    index : int
        Row of the sample in ``X`` / ``Y``.
    deviation : float
        Its deviation in percent (the aggregate one for several columns).
    expected, predicted : tuple of float
        Target and prediction of every column the report covers.
    """

    index: int
    deviation: float
    expected: tuple[float, ...]
    predicted: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "deviation": _enc(self.deviation),
            "expected": [_enc(v) for v in self.expected],
            "predicted": [_enc(v) for v in self.predicted],
        }


def _bucket_of(d: np.ndarray) -> np.ndarray:
    k = np.searchsorted(_LOWER_EDGES, d, side="right")
    k[d > FAILURE_THRESHOLD] = 6
    return k


@dataclass(frozen=True, eq=False)
class DeviationReport:
    """Deviation metrics of predictions against targets (see :mod:`linncore.evaluation.report`).

    Build one with :func:`evaluate` or :meth:`from_predictions`.

    Attributes
    ----------
    deviations : ndarray, shape (n,)
        Per-sample deviation in percent (aggregated over columns when there are several).
    expected, predicted : ndarray, shape (n, m)
        The targets and predictions the report covers.
    floor : ndarray, shape (m,)
        Floor of the denominator of each column.
    column : int or None
        The output column of a per-column report; None for an aggregate of several columns.
    columns : tuple of DeviationReport
        One report per column when there are two or more, else empty (the report is then
        that column's own).
    combine : {"max", "mean"}
        How columns are aggregated per sample.
    worst_n : int
        How many worst samples :attr:`worst` lists.

    Examples
    --------
    >>> r = DeviationReport.from_predictions([10.5, 13.0, 30.0, 10.0], [10.0, 10.0, 10.0, 10.0])
    >>> r.counts["0-10%"], r.counts["30-40%"], r.failures
    (2, 1, 1)
    >>> r.score  # mean of 100-5, 100-30, 0, 100
    66.25
    >>> [w.index for w in r.worst[:2]]
    [2, 1]
    """

    deviations: np.ndarray
    expected: np.ndarray
    predicted: np.ndarray
    floor: np.ndarray
    column: int | None = 0
    columns: tuple[DeviationReport, ...] = ()
    combine: str = "max"
    worst_n: int = 5
    _bucket: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_bucket", _bucket_of(self.deviations))

    # -- building --------------------------------------------------------------------------
    @classmethod
    def from_predictions(
        cls,
        Y_pred: Any,
        Y: Any,
        *,
        worst_n: int = 5,
        floor: Any = None,
        floor_fraction: float = DEFAULT_FLOOR_FRACTION,
        combine: str = "max",
    ) -> DeviationReport:
        """The report of predictions ``Y_pred`` against targets ``Y`` (same shape).

        Parameters are those of :func:`evaluate`.
        """
        p, y = _pair(Y_pred, Y)
        worst_n = non_negative_int(worst_n, "worst_n")
        combine = choice(combine, ["max", "mean"], "combine")
        ff = finite_float(floor_fraction, "floor_fraction", lo=0.0, lo_open=True)
        f = _column_floor(y, floor, ff)
        d = _dev(p, y, f)
        m = y.shape[1]
        if m == 1:
            return cls(d[:, 0], y, p, f, 0, (), combine, worst_n)
        cols = tuple(
            cls(d[:, j], y[:, j : j + 1], p[:, j : j + 1], f[j : j + 1], j, (), combine, worst_n)
            for j in range(m)
        )
        if y.shape[0] == 0:
            agg = np.zeros(0)
        elif combine == "max":
            agg = d.max(axis=1)
        else:
            agg = d.mean(axis=1)
        return cls(agg, y, p, f, None, cols, combine, worst_n)

    # -- the metrics -----------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(self.deviations.shape[0])

    @property
    def buckets(self) -> dict[str, np.ndarray]:
        """Sample indices (ascending) in each bucket, by label, in bucket order."""
        return {label: np.flatnonzero(self._bucket == k) for k, (label, _, _) in enumerate(BUCKETS)}

    @property
    def counts(self) -> dict[str, int]:
        """Number of samples in each bucket, by label."""
        c = np.bincount(self._bucket, minlength=len(BUCKETS))
        return {label: int(c[k]) for k, (label, _, _) in enumerate(BUCKETS)}

    def samples_in(self, label: str) -> np.ndarray:
        """Indices of the samples in bucket ``label`` (e.g. ``"0-10%"``)."""
        labels = [b[0] for b in BUCKETS]
        if label not in labels:
            raise ValueError(f"label: expected one of {labels}, got {label!r}")
        return self.buckets[label]

    @property
    def score(self) -> float:
        """Mean of ``max(0, 100 - d_i)`` over samples, in [0, 100]; NaN without samples."""
        if self.n_samples == 0:
            return math.nan
        return float(np.mean(np.maximum(0.0, 100.0 - self.deviations)))

    @property
    def average_deviation(self) -> float:
        """Mean deviation in percent.

        ``inf`` when a prediction is not finite; NaN without samples.
        """
        if self.n_samples == 0:
            return math.nan
        return float(np.mean(self.deviations))

    @property
    def failures(self) -> int:
        """Number of samples with deviation over 100 %."""
        return int(np.count_nonzero(self._bucket == 6))

    @property
    def failure_rate(self) -> float:
        """``failures / n_samples``; NaN without samples."""
        return self.failures / self.n_samples if self.n_samples else math.nan

    @property
    def worst(self) -> tuple[WorstSample, ...]:
        """The ``worst_n`` samples of highest deviation, worst first (ties: lower index first)."""
        order = np.lexsort((np.arange(self.n_samples), -self.deviations))[: self.worst_n]
        return tuple(
            WorstSample(
                int(i),
                float(self.deviations[i]),
                tuple(float(v) for v in self.expected[i]),
                tuple(float(v) for v in self.predicted[i]),
            )
            for i in order
        )

    def __repr__(self) -> str:
        what = (
            f"column {self.column}"
            if self.column is not None
            else f"{len(self.columns)} columns, {self.combine}"
        )
        return (
            f"DeviationReport(n_samples={self.n_samples}, {what}, score={self.score:.2f}, "
            f"average_deviation={self.average_deviation:.2f}%, failures={self.failures})"
        )

    # -- text --------------------------------------------------------------------------------
    def summary_text(self, width: int = 40, bar: str = "\u2588") -> str:
        """A printable summary: score, average, failures, a bar per bucket and the worst samples.

        Parameters
        ----------
        width : int
            Characters of a bar holding every sample (default 40).
        bar : str
            The bar character (default a full block; use ``"#"`` for plain ASCII).

        Examples
        --------
        >>> r = DeviationReport.from_predictions([1.0, 1.05, 3.0], [1.0, 1.0, 1.0])
        >>> print(r.summary_text(width=10, bar="#"))  # doctest: +NORMALIZE_WHITESPACE
        Deviation report: 3 samples (column 0)
        Quality score: 65.00/100
        Average deviation: 68.33%
        Failures (deviation > 100%): 1 (33.3%)
        Deviation buckets:
            0-10%      2   66.7%  #######
           10-20%      0    0.0%
           20-30%      0    0.0%
           30-40%      0    0.0%
           40-50%      0    0.0%
          50-100%      0    0.0%
            100%+      1   33.3%  ###
        Worst 3 samples:
          1. sample 2: expected 1, predicted 3, deviation 200.0%
          2. sample 1: expected 1, predicted 1.05, deviation 5.0%
          3. sample 0: expected 1, predicted 1, deviation 0.0%
        """
        width = positive_int(width, "width")
        n = self.n_samples
        what = (
            f"column {self.column}"
            if self.column is not None
            else f"{len(self.columns)} columns, combined by {self.combine}"
        )
        lines = [f"Deviation report: {n} samples ({what})"]
        if n == 0:
            lines.append("No samples: score and average deviation are undefined.")
            return "\n".join(lines)
        lines += [
            f"Quality score: {self.score:.2f}/100",
            f"Average deviation: {self.average_deviation:.2f}%",
            f"Failures (deviation > 100%): {self.failures} ({100.0 * self.failure_rate:.1f}%)",
            "Deviation buckets:",
        ]
        for label, c in self.counts.items():
            length = int(round(width * c / n))
            if c and not length:
                length = 1
            lines.append(f"  {label:>7}  {c:5d}  {100.0 * c / n:5.1f}%  {bar * length}".rstrip())
        if self.columns:
            lines.append("Per column:")
            for r in self.columns:
                lines.append(
                    f"  column {r.column}: score {r.score:.2f}, average deviation "
                    f"{r.average_deviation:.2f}%, failures {r.failures}"
                )
        worst = self.worst
        if worst:
            lines.append(f"Worst {len(worst)} samples:")
            for k, w in enumerate(worst, 1):
                lines.append(
                    f"  {k}. sample {w.index}: expected {_short(w.expected)}, "
                    f"predicted {_short(w.predicted)}, deviation {w.deviation:.1f}%"
                )
        return "\n".join(lines)

    def summary(self, width: int = 40, bar: str = "\u2588") -> None:
        """Print :meth:`summary_text`."""
        print(self.summary_text(width, bar))

    # -- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; floats exact (``repr``), non-finite ones as ``"inf"``/``"nan"``."""
        return {
            "format": _REPORT_FORMAT,
            "format_version": _REPORT_VERSION,
            "n_samples": self.n_samples,
            "column": self.column,
            "combine": self.combine,
            "worst_n": self.worst_n,
            "score": _enc(self.score),
            "average_deviation": _enc(self.average_deviation),
            "failures": self.failures,
            "buckets": {label: idx.tolist() for label, idx in self.buckets.items()},
            "worst": [w.to_dict() for w in self.worst],
            "floor": [_enc(v) for v in self.floor],
            "deviations": [_enc(v) for v in self.deviations],
            "expected": [[_enc(v) for v in row] for row in self.expected],
            "predicted": [[_enc(v) for v in row] for row in self.predicted],
            "columns": [r.to_dict() for r in self.columns],
        }

    def to_json(self, indent: int | None = None) -> str:
        """The report as JSON text (see :meth:`to_dict`).

        :meth:`from_json` reads it back exactly.
        """
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], _where: str = "report") -> DeviationReport:
        """The report of a :meth:`to_dict` dict (untrusted input is safe).

        The stored deviations must be those the stored targets, predictions and floors give,
        and the stored buckets, score and failures those of the deviations; a report of two or
        more columns holds one per-column report per column, and those hold none.

        Raises
        ------
        ReportFileError
            Naming the field (``report.columns[1].floor``); values are quoted to a few dozen
            characters.
        """
        return _report_from(cls, doc, _where, nested=False)

    @classmethod
    def from_json(cls, text: str | bytes, _label: str = "text") -> DeviationReport:
        """Read a report written by :meth:`to_json` (strict JSON: duplicate keys, NaN literals
        and nesting deeper than a report's own are refused with :class:`ReportFileError`)."""
        if isinstance(text, (bytes, bytearray)):
            if len(text) > MAX_FILE_BYTES:
                raise ReportFileError(f"{_label}: more than the limit of {MAX_FILE_BYTES} bytes")
            text = _untrusted.decode_text(bytes(text), label=_label, error=ReportFileError)
        elif not isinstance(text, str):
            raise TypeError(f"text: expected JSON text (str or bytes), got {type(text).__name__}")
        doc = _untrusted.loads_json(text, label=_label, max_depth=_MAX_DEPTH, error=ReportFileError)
        return _report_from(
            cls, doc, "report" if _label == "text" else f"{_label}: report", nested=False
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_json` to ``path`` atomically.

        An earlier file survives a failed write.
        """
        write_text_atomic(path, self.to_json(indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> DeviationReport:
        """Read a report written by :meth:`save` (an untrusted file: see :meth:`from_json`).

        Raises
        ------
        ReportFileError
            Naming the file: not a regular file of at most :data:`MAX_FILE_BYTES` bytes, or
            not a valid report.
        FileNotFoundError
        """
        label = _untrusted.short(os.fspath(path), 80).strip("'\"")
        data = _untrusted.read_bytes(
            path, limit=MAX_FILE_BYTES, what="a deviation report (JSON)", error=ReportFileError
        )
        return cls.from_json(data, _label=label)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DeviationReport):
            return NotImplemented
        return self.to_json() == other.to_json()


def _enc(v: float) -> float | str:
    v = float(v)
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def _dec(v: Any, where: str = "value") -> float:
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ReportFileError(f"{where}: expected a number, got {_untrusted.kind(v)}")
    try:
        return float(v)
    except OverflowError:
        raise ReportFileError(
            f"{where}: expected a finite number, got {_untrusted.short(v)}"
        ) from None


def _field(doc: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in doc:
        raise ReportFileError(f"{where}: missing field {key!r}")
    return doc[key]


def _numbers(v: Any, where: str) -> np.ndarray:
    if not isinstance(v, list):
        raise ReportFileError(f"{where}: expected a list of numbers, got {_untrusted.kind(v)}")
    return np.array([_dec(x, f"{where}[{i}]") for i, x in enumerate(v)], dtype=np.float64)


def _table(v: Any, where: str) -> np.ndarray:
    if not isinstance(v, list):
        raise ReportFileError(f"{where}: expected a list of rows, got {_untrusted.kind(v)}")
    rows = [_numbers(r, f"{where}[{i}]") for i, r in enumerate(v)]
    if len({r.shape for r in rows}) > 1:
        raise ReportFileError(f"{where}: expected rows of one length")
    return np.array(rows, dtype=np.float64) if rows else np.zeros((0, 0))


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def _report_from(cls: Any, doc: Any, where: str, nested: bool) -> DeviationReport:
    """The checked report of a decoded document (see :meth:`DeviationReport.from_dict`)."""

    def bad(what: str) -> ReportFileError:
        return ReportFileError(f"{where}: {what}")

    if not isinstance(doc, Mapping):
        raise bad(f"expected a JSON object, got {_untrusted.kind(doc)}")
    if doc.get("format") != _REPORT_FORMAT:
        raise bad(f"format: expected {_REPORT_FORMAT!r}, got {_untrusted.kind(doc.get('format'))}")
    version = positive_int(doc.get("format_version"), "format_version", error=bad)
    if version > _REPORT_VERSION:
        raise bad(
            f"format_version {version} is newer than this linncore reads ({_REPORT_VERSION}); "
            "upgrade linncore"
        )
    dev = _numbers(_field(doc, "deviations", where), f"{where}.deviations")
    exp = _table(_field(doc, "expected", where), f"{where}.expected")
    pred = _table(_field(doc, "predicted", where), f"{where}.predicted")
    floor = _numbers(_field(doc, "floor", where), f"{where}.floor")
    column, combine, worst_n = (_field(doc, k, where) for k in ("column", "combine", "worst_n"))
    cols_doc = _field(doc, "columns", where)
    n, m = dev.shape[0], floor.shape[0]
    if m < 1:
        raise bad("floor: expected one number per output column, got an empty list")
    if exp.size == 0:
        exp, pred = exp.reshape(n, m), pred.reshape(n, m)
    if exp.shape != (n, m) or pred.shape != (n, m):
        raise bad(
            f"expected, predicted, deviations and floor disagree in shape: {exp.shape}, "
            f"{pred.shape}, ({n},), ({m},)"
        )
    if np.any(dev < 0) or np.any(np.isnan(dev)):
        raise bad("deviations: expected non-negative values (inf for failures)")
    if n and not np.all(np.isfinite(floor) & (floor > 0)):
        j = int(np.flatnonzero(~(np.isfinite(floor) & (floor > 0)))[0])
        raise bad(
            f"floor[{j}]: expected a positive finite number, got "
            f"{_untrusted.short(float(floor[j]))}"
        )
    if not np.all(np.isfinite(exp)):
        raise bad("expected: expected finite targets")
    choice(combine, ["max", "mean"], "combine", any_case=False, error=bad)
    non_negative_int(worst_n, "worst_n", error=bad)
    if not isinstance(cols_doc, list):
        raise bad(
            f"columns: expected a list of per-column reports, got {_untrusted.kind(cols_doc)}"
        )
    if m == 1 or nested:
        if cols_doc:
            raise bad(
                f"columns: expected an empty list for a report of one column, got "
                f"{_untrusted.kind(cols_doc)}"
            )
        if isinstance(column, bool) or not isinstance(column, int) or column < 0:
            raise bad(f"column: expected null or a column index, got {_untrusted.kind(column)}")
        cols: tuple = ()
        if not _same(dev, _dev(pred, exp, floor)[:, 0] if n else dev):
            raise bad("deviations: not those of the stored targets, predictions and floor")
    else:
        if column is not None:
            raise bad(
                f"column: expected null or a column index (null for a report of {m} columns), got "
                f"{_untrusted.kind(column)}"
            )
        if len(cols_doc) != m:
            raise bad(
                f"columns: expected {m} per-column reports (one per column), got {len(cols_doc)}"
            )
        cols = tuple(
            _report_from(cls, c, f"{where}.columns[{j}]", nested=True)
            for j, c in enumerate(cols_doc)
        )
        for j, c in enumerate(cols):
            if (
                c.column != j
                or not _same(c.expected, exp[:, j : j + 1])
                or not _same(c.predicted, pred[:, j : j + 1])
                or not _same(c.floor, floor[j : j + 1])
            ):
                raise bad(f"columns[{j}]: not the report of column {j} of this report's data")
        if n:
            d = np.stack([c.deviations for c in cols], axis=1)
            agg = d.max(axis=1) if combine == "max" else d.mean(axis=1)
            if not _same(dev, agg):
                raise bad(f"deviations: not the {combine} over the columns' deviations")
    report = cls(dev, exp, pred, floor, column, cols, combine, worst_n)
    stored = doc.get("buckets")
    try:
        same = stored is None or {k: list(v) for k, v in stored.items()} == {
            k: v.tolist() for k, v in report.buckets.items()
        }
    except (AttributeError, TypeError):
        raise bad("buckets: expected an object of bucket names to sample index lists") from None
    if not same:
        raise bad("the stored buckets disagree with the stored deviations")
    if doc.get("failures") is not None and doc["failures"] != report.failures:
        raise bad(
            f"failures: stored {_untrusted.short(doc['failures'])}, the deviations give "
            f"{report.failures}"
        )
    if doc.get("score") is not None:
        try:
            score = _dec(doc["score"])
        except ReportFileError:
            score = None
        if score is None or not (
            score == report.score or (math.isnan(score) and math.isnan(report.score))
        ):
            raise bad(
                f"score: stored {_untrusted.short(doc['score'])}, the deviations give "
                f"{report.score!r}"
            )
    return report


def _short(values: Sequence[float]) -> str:
    txt = [f"{v:.6g}" for v in values]
    return txt[0] if len(txt) == 1 else "(" + ", ".join(txt) + ")"


# -- evaluation ----------------------------------------------------------------------------
def evaluate(
    model: Any,
    X: Any,
    Y: Any,
    *,
    worst_n: int = 5,
    floor: Any = None,
    floor_fraction: float = DEFAULT_FLOOR_FRACTION,
    combine: str = "max",
) -> DeviationReport:
    """Deviation metrics of ``model`` on inputs ``X`` and targets ``Y``.

    Parameters
    ----------
    model : Network or object with ``predict(X)``
        Anything whose ``predict`` maps ``(n, n_in)`` inputs to ``(n, m)`` outputs.
    X : array_like, shape (n, n_in)
        Inputs; with ``n = 0`` the model is not called and the report is empty.
    Y : array_like, shape (n, m) or (n,)
        Finite targets.
    worst_n : int
        How many worst samples to list (default 5).
    floor : float or array_like, optional
        Explicit floor of the deviation's denominator, one number or one per column.
    floor_fraction : float
        Default floor as a fraction of each target column's range (default 0.05).
    combine : {"max", "mean"}
        Aggregation over columns of a multi-output model (default ``"max"``).

    Returns
    -------
    DeviationReport
        Buckets, score, average deviation, failures and worst samples, defined in
        :mod:`linncore.evaluation.report`.

    Examples
    --------
    >>> import numpy as np
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((1, 1), weight=[[0.5]], bias=[0.0])], dtype="float64")
    >>> report = evaluate(net, [[1.0], [1.0], [1.0]], [[0.5], [0.55], [1.0]])
    >>> report.counts["0-10%"], report.counts["50-100%"], round(report.score, 3)
    (2, 1, 80.303)
    >>> evaluate(net, np.zeros((0, 1)), np.zeros((0, 1))).n_samples
    0
    """
    x = as_float_array(X, "X")
    n = x.shape[0] if x.ndim >= 1 else 1
    if n == 0:
        y = _as_2d(Y, "Y")
        if y.shape[0] != 0:
            raise ValueError(f"Y: expected 0 samples (as many as X), got {y.shape[0]}")
        pred = np.zeros_like(y)
    else:
        if not callable(getattr(model, "predict", None)):
            raise TypeError(
                "model: expected a Network or an object with predict(X), got "
                f"{type(model).__name__}"
            )
        pred = as_float_array(model.predict(X), "model.predict(X)")
        pred = pred[:, None] if pred.ndim == 1 else pred
        if pred.ndim != 2:
            raise ValueError(
                f"model.predict(X): expected (samples, outputs), got shape {pred.shape}"
            )
        # the model reads a 1-D X itself (n samples of one input, or one sample); a 1-D Y holding
        # one sample's outputs then reads as one row
        y_arr = np.asarray(Y)
        if (
            pred.shape[0] == 1
            and pred.shape[1] > 1
            and y_arr.ndim == 1
            and y_arr.shape[0] == pred.shape[1]
        ):
            Y = y_arr[None, :]
    return DeviationReport.from_predictions(
        pred, Y, worst_n=worst_n, floor=floor, floor_fraction=floor_fraction, combine=combine
    )


class EvaluationCallback(Callback):
    """Evaluate on validation data every ``every`` epochs and log the score in the history.

    On the epochs ``e`` (0-based) with ``(e + 1) % every == 0`` the callback runs
    :func:`evaluate` on ``(X_val, Y_val)`` and writes ``<prefix>score``,
    ``<prefix>avg_deviation`` and ``<prefix>failures`` into the epoch's logs; on the other
    epochs it writes NaN under the same keys, so every history list stays aligned with
    ``history.epoch``.  The reports are kept in :attr:`reports` by epoch.

    Pass it as ``net.fit(..., callbacks=[EvaluationCallback(X_val, Y_val, every=5)])``.
    ``LinnModel.fit_model(..., callbacks=[...])`` evaluates through the LinnModel, so
    ``X_val``, ``Y_val`` are in the data's own units and predictions are unscaled, as
    :meth:`LinnModel.predict` gives them.  ``evaluates=`` names any other model with
    ``predict`` to evaluate instead of the network being trained.

    Parameters
    ----------
    X_val, Y_val : array_like
        Validation inputs and targets.
    every : int
        Evaluate every this many epochs (default 1).
    prefix : str
        Prefix of the logged keys (default ``"val_"``).
    verbose : int
        1 prints a line per evaluation.
    evaluates : object with ``predict``, optional
        The model to evaluate (default the one being trained).
    **options
        ``worst_n``, ``floor``, ``floor_fraction``, ``combine`` of :func:`evaluate`.

    Examples
    --------
    >>> import numpy as np
    >>> from linncore import Dense, Network
    >>> x = np.linspace(-1, 1, 32)[:, None]
    >>> net = Network([Dense((1, 4), "tanh", seed=0), Dense((4, 1), seed=1)])
    >>> h = net.fit(x, 0.5 * x, epochs=4, verbose=0, seed=0,
    ...             callbacks=[EvaluationCallback(x, 0.5 * x, every=2)])
    >>> [bool(np.isnan(s)) for s in h.history["val_score"]]
    [True, False, True, False]
    """

    def __init__(
        self,
        X_val: Any,
        Y_val: Any,
        every: int = 1,
        *,
        prefix: str = "val_",
        verbose: int = 0,
        evaluates: Any = None,
        **options: Any,
    ) -> None:
        self.X_val = as_float_array(X_val, "X_val")
        self.Y_val = as_float_array(Y_val, "Y_val")
        n_x = self.X_val.shape[0] if self.X_val.ndim else 1
        n_y = self.Y_val.shape[0] if self.Y_val.ndim else 1
        if n_x != n_y:
            raise ValueError(f"Y_val: expected {n_x} samples (as many as X_val), got {n_y}")
        self.every = positive_int(every, "every")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix: expected a str, got {type(prefix).__name__}")
        unknown = set(options) - {"worst_n", "floor", "floor_fraction", "combine"}
        if unknown:
            raise TypeError(f"options: unknown evaluation option(s) {sorted(unknown)}")
        self.prefix = prefix
        self.verbose = verbose
        self.options = options
        self.reports: dict[int, DeviationReport] = {}
        if evaluates is not None and not callable(getattr(evaluates, "predict", None)):
            raise TypeError(
                f"evaluates: expected a model with predict(), got {type(evaluates).__name__}"
            )
        self.evaluates = evaluates

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.reports = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        keys = (self.prefix + "score", self.prefix + "avg_deviation", self.prefix + "failures")
        if (epoch + 1) % self.every:
            for k in keys:
                logs[k] = math.nan
            return
        report = evaluate(
            self.model if self.evaluates is None else self.evaluates,
            self.X_val,
            self.Y_val,
            **self.options,
        )
        self.reports[epoch] = report
        logs[keys[0]] = report.score
        logs[keys[1]] = report.average_deviation
        logs[keys[2]] = float(report.failures)
        if self.verbose:
            print(
                f"  epoch {epoch + 1}: validation score {report.score:.1f}/100, average deviation "
                f"{report.average_deviation:.1f}%, failures {report.failures}/{report.n_samples}"
            )


# -- plots (matplotlib is an optional extra) ----------------------------------------------
def _figure_class() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "plotting needs matplotlib, an optional extra: pip install linncore[plot]"
        ) from exc
    return Figure


def _finish(fig: Any, path: str | os.PathLike | None) -> Any:
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_buckets(
    report: DeviationReport, path: str | os.PathLike | None = None, *, title: str | None = None
) -> Any:
    """A bar chart of the samples per deviation bucket, each bar labelled with its count.

    Parameters
    ----------
    report : DeviationReport
    path : str or PathLike, optional
        Also save the figure there (format from the extension).
    title : str, optional
        Default: the sample count, score and failures.  Name the model or run here.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ImportError
        Without matplotlib (``pip install linncore[plot]``).
    """
    if not isinstance(report, DeviationReport):
        raise TypeError(f"report: expected a DeviationReport, got {type(report).__name__}")
    Figure = _figure_class()
    fig = Figure(figsize=(7, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    counts = report.counts
    shade = np.linspace(0.15, 0.9, len(BUCKETS))
    colors = [(0.2 * (1 - s), 0.6 * (1 - s) + 0.1, 0.3 * (1 - s) + 0.1) for s in shade]
    bars = ax.bar(range(len(counts)), list(counts.values()), color=colors)
    ax.bar_label(bars, fontsize=8, padding=2)
    ax.set_ylim(0, max(max(counts.values(), default=0), 1) * 1.15)  # room for the labels
    ax.set_xticks(range(len(counts)))
    ax.set_xticklabels(list(counts))
    ax.set_xlabel("deviation |prediction - target| / max(|target|, floor) (%)")
    ax.set_ylabel("samples (count)")
    ax.set_title(
        title
        if title is not None
        else f"deviation buckets: {report.n_samples} samples, score {report.score:.1f}/100, "
        f"{report.failures} failure(s) (100%+)",
        fontsize=10,
    )
    return _finish(fig, path)


def plot_predictions(
    model_or_pred: Any,
    X: Any,
    Y: Any,
    path: str | os.PathLike | None = None,
    *,
    title: str | None = None,
) -> Any:
    """Predicted against target, one panel per output column, with the line ``y = x``.

    Parameters
    ----------
    model_or_pred : model with ``predict`` or array_like
        A model (called on ``X``) or the predictions themselves (``X`` then unused, may be None).
    X, Y : array_like
    path : str or PathLike, optional
    title : str, optional
        Default: the sample count and, for a model, its description.

    Returns
    -------
    matplotlib.figure.Figure
    """
    Figure = _figure_class()
    from matplotlib.ticker import MaxNLocator

    if callable(getattr(model_or_pred, "predict", None)):
        pred = model_or_pred.predict(X)
        what = _describe(model_or_pred)
    else:
        pred, what = model_or_pred, None
    p, y = _pair(pred, Y)
    n, m = y.shape
    cols, rows = min(m, 4), (m + 3) // 4
    fig = Figure(figsize=(max(3.9 * cols, 6.0), 3.9 * rows + 0.6))
    for j in range(m):
        ax = fig.add_subplot(rows, cols, j + 1)
        ax.scatter(y[:, j], p[:, j], s=8, alpha=0.7)
        finite = np.isfinite(p[:, j])
        lo = float(min(y[:, j].min(), p[finite, j].min(initial=y[:, j].min())))
        hi = float(max(y[:, j].max(), p[finite, j].max(initial=y[:, j].max())))
        if hi == lo:
            lo, hi = lo - 1.0, hi + 1.0
        ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8)
        pad = 0.03 * (hi - lo)  # points on the edges stay whole
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal", adjustable="box")
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        r2 = _r2(y[:, j], p[:, j])
        ax.set_title(("" if m == 1 else f"output {j}: ") + f"R^2 {r2:.3f}", fontsize=9)
        ax.set_xlabel("target (units of Y)" if m == 1 else f"target Y[:, {j}] (units of Y)")
        ax.set_ylabel("predicted (units of Y)" if m == 1 else f"predicted [:, {j}] (units of Y)")
    # no legend over the points: the title says what the line is
    default = f"predicted against target (line: predicted = target), {n} samples" + (
        f"\n{what}" if what else ""
    )
    fig.suptitle(default if title is None else title, fontsize=10)
    return _finish(fig, path)


def plot_history(
    history: Any,
    path: str | os.PathLike | None = None,
    *,
    keys: Sequence[str] | None = None,
    title: str | None = None,
) -> Any:
    """Training curves: losses (log scale when positive) and, when logged, the validation score.

    Parameters
    ----------
    history : History or mapping of str to list of float
        What ``fit`` returns, or its ``.history`` dict.
    path : str or PathLike, optional
    keys : list of str, optional
        Which series to draw (default all); keys ending in ``score`` go to a second panel.
        NaN entries (epochs without evaluation) are skipped.
    title : str, optional
        Default: the epochs run and, for a ``History``, the trained model.

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = getattr(history, "history", history)
    if not isinstance(data, Mapping):
        raise TypeError(
            f"history: expected a History or a dict of lists, got {type(history).__name__}"
        )
    keys = list(data) if keys is None else list(keys)
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"keys: not in the history: {missing}; it has {sorted(data)}")
    Figure = _figure_class()
    scores = [k for k in keys if k.endswith("score")]
    losses = [k for k in keys if k not in scores and not k.endswith(("failures", "avg_deviation"))]
    panels = [g for g in (losses, scores) if g]
    fig = Figure(figsize=(8, 3.2 * max(len(panels), 1) + 0.4))
    epochs = max((len(data[k]) for k in keys), default=0)
    for i, group in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        positive = True
        for k in group:
            v = np.asarray(data[k], dtype=np.float64)
            e = np.arange(1, v.size + 1)
            ok = np.isfinite(v)
            ax.plot(e[ok], v[ok], marker="o" if ok.sum() < v.size else None, markersize=3, label=k)
            positive &= bool(np.all(v[ok] > 0))
        if group is losses:
            if positive:
                ax.set_yscale("log")
            ax.set_ylabel("loss (training loss units,\nscaled data)", fontsize=8)
        else:
            ax.set_ylabel("quality score (0 to 100)", fontsize=8)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    model = getattr(history, "model", None)
    default = f"training history, {epochs} epoch(s)"
    if model is not None:
        default += f": {_describe(model)}"
    fig.suptitle(default if title is None else title, fontsize=10)
    return _finish(fig, path)


def _describe(model: Any) -> str:
    """A short description of a model for a plot title: its network's repr when it has one."""
    net = getattr(model, "network", model)
    text = repr(net)
    return text if len(text) <= 90 else text[:87] + "..."


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    residual = float(np.sum((y - p) ** 2))
    return (1.0 - residual / total) if total > 0 else (1.0 if residual == 0 else 0.0)
