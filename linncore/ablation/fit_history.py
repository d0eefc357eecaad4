"""The per-step history of instrumented training.

:class:`FitHistory` holds one array per metric (one entry per optimizer step) plus the
``epoch`` and ``step`` index arrays, the configuration of the run and its seed.  It is saved
without loss as a ``.npz`` file whose arrays are the metrics and whose ``__meta__`` entry is
JSON (configuration, seed, versions).
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .._util import untrusted as _untrusted
from .._util.atomic import atomic_write, save_figure
from .._util.validate import positive_int

__all__ = ["FitHistory", "HistoryFileError", "MAX_FILE_BYTES"]

#: The largest history file read, and the most its arrays may unpack to (a million steps of
#: forty metrics is 320 MB).
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
_MAX_MEMBERS = 1024


class HistoryFileError(ValueError):
    """A history file is malformed; the message names the file and the member or field."""


_FORMAT = "linncore.FitHistory"
_VERSION = 1
_PREFIX = "metric:"


def _json_default(v: Any) -> Any:
    """NumPy scalars and arrays in the metadata as plain JSON."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"config: {type(v).__name__} is not JSON data")


class FitHistory(Mapping):
    """Per-step metric arrays of a training run.

    Parameters
    ----------
    metrics : mapping of str to array_like
        Equal-length 1-D arrays, one entry per step (``epoch`` and ``step`` among them).
    config : dict, optional
        The run's configuration (JSON-able).
    seed : int, optional
    stop_reason : str, optional
        Why the run ended before its last epoch (divergence), or None.

    Examples
    --------
    >>> import numpy as np
    >>> h = FitHistory({"step": np.arange(3), "epoch": np.zeros(3, int),
    ...                 "loss": np.array([3.0, 2.0, 1.0])})
    >>> float(h["loss"][-1]), float(h.loss[0]), len(h)
    (1.0, 3.0, 3)
    >>> sorted(h.keys())
    ['epoch', 'loss', 'step']
    """

    def __init__(
        self,
        metrics: Mapping[str, Any],
        config: dict | None = None,
        seed: int | None = None,
        stop_reason: str | None = None,
    ) -> None:
        arrays = {str(k): np.asarray(v) for k, v in metrics.items()}
        for k, a in arrays.items():
            if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
                raise TypeError(f"metrics[{k!r}]: expected numbers, got dtype {a.dtype}")
        lengths = {k: a.shape for k, a in arrays.items()}
        n = {a.shape[0] if a.ndim == 1 else -1 for a in arrays.values()}
        if len(n) > 1 or -1 in n:
            raise ValueError(f"metrics: expected 1-D arrays of one length, got shapes {lengths}")
        self._arrays = arrays
        self.config = dict(config or {})
        self.seed = seed
        self.stop_reason = stop_reason

    # -- mapping -------------------------------------------------------------------------
    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return self._arrays[key]
        except KeyError:
            raise KeyError(
                f"{key!r} is not a logged metric; logged: {', '.join(self._arrays)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        """Number of steps."""
        return next(iter(self._arrays.values())).shape[0] if self._arrays else 0

    def __getattr__(self, name: str) -> np.ndarray:
        arrays = self.__dict__.get("_arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(f"FitHistory has no metric or attribute {name!r}")

    def __repr__(self) -> str:
        return f"FitHistory(steps={len(self)}, metrics={len(self._arrays)})"

    @property
    def n_steps(self) -> int:
        return len(self)

    def to_dict(self) -> dict[str, list]:
        """The metrics as plain lists (NaN kept as float NaN)."""
        return {k: v.tolist() for k, v in self._arrays.items()}

    # -- comparison ----------------------------------------------------------------------
    def summary(self) -> dict[str, float | int | bool]:
        """One value per question a sweep asks of a run (see :func:`linncore.ablation.sweep`):
        ``steps`` an int, ``diverged`` and ``silent_death`` bools, every other entry a float
        (NaN when the run did not log what it needs)."""

        def last(k):
            return float(self._arrays[k][-1]) if k in self._arrays and len(self) else math.nan

        def agg(k, fn):
            a = self._arrays.get(k)
            if a is None or not len(a) or np.all(np.isnan(a)):
                return math.nan
            return float(fn(a[~np.isnan(a)]))

        diverged = bool(len(self) and self._arrays.get("diverged", np.zeros(1))[-1])
        actual = self._arrays.get("actual_update_norm")
        loss = self._arrays.get("loss")
        silent = bool(
            actual is not None
            and len(self)
            and not diverged
            and loss is not None
            and np.all(np.isfinite(loss[-1:]))
            and _silently_dead(actual)
        )
        return {
            "steps": len(self),
            "final_loss": last("loss"),
            "min_loss": agg("loss", np.min),
            "diverged": diverged,
            "silent_death": silent,
            "min_update_cosine": agg("update_cosine", np.min),
            "max_weight_saturation_fraction": agg("weight_saturation_fraction_max", np.max),
            "max_weight_near_rail_fraction": agg("weight_near_rail_fraction_max", np.max),
            "max_gradient_saturation_fraction": agg("gradient_saturation_fraction_max", np.max),
            "max_gradient_near_rail_fraction": agg("gradient_near_rail_fraction_max", np.max),
            "max_update_saturation_fraction": agg("update_saturation_fraction_max", np.max),
            "max_update_underflow_fraction": agg("update_underflow_fraction_max", np.max),
            "max_hessian_lambda_max": agg("hessian_lambda_max", np.max),
            "max_stability_margin_ctrl": agg("stability_margin_lambda_ctrl", np.max),
            "mean_alpha": agg("alpha", np.mean),
        }

    def compare(
        self, other: FitHistory, keys: list[str] | None = None
    ) -> dict[str, dict[str, float]]:
        """Side-by-side summaries of two runs.

        Returns ``{metric: {"self": a, "other": b, "diff": b - a}}``.
        """
        if not isinstance(other, FitHistory):
            raise TypeError(f"other: expected a FitHistory, got {type(other).__name__}")
        a, b = self.summary(), other.summary()
        keys = keys or list(a)
        return {k: {"self": a[k], "other": b[k], "diff": b[k] - a[k]} for k in keys}

    # -- files ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the history to ``path`` (``.npz``) atomically, without loss."""
        meta = {
            "format": _FORMAT,
            "version": _VERSION,
            "config": self.config,
            "seed": self.seed,
            "stop_reason": self.stop_reason,
            "versions": _versions(),
        }
        # metric names go in with a prefix: none can collide with np.savez's own arguments
        arrays = {_PREFIX + k: v for k, v in self._arrays.items()}
        arrays["__meta__"] = np.array(json.dumps(meta, allow_nan=True, default=_json_default))
        with atomic_write(path, "wb") as fh:
            # the prefixed keys cannot bind savez's allow_pickle, which the stubs cannot see
            np.savez(fh, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | os.PathLike) -> FitHistory:
        """Read a history written by :meth:`save` (an untrusted file; nothing is unpickled).

        Raises
        ------
        HistoryFileError
            Naming the file and the member or field: not a regular file, larger than
            :data:`MAX_FILE_BYTES`, an archive whose members unpack to more than
            ``MAX_UNPACKED_BYTES`` (checked before unpacking), or metadata that is not what
            :meth:`save` writes (format, version, seed, stop reason, configuration).
        FileNotFoundError
        """
        label = _untrusted.short(os.fspath(path), 80).strip("'\"")
        members = _untrusted.read_npz(
            path,
            limit=MAX_FILE_BYTES,
            what="a FitHistory file (.npz)",
            max_members=_MAX_MEMBERS,
            member_limit=MAX_UNPACKED_BYTES,
            total_limit=MAX_UNPACKED_BYTES,
            kinds="biufU",
            error=HistoryFileError,
        )

        def bad(what: str) -> HistoryFileError:
            return HistoryFileError(f"{label}: {what}")

        raw = members.pop("__meta__", None)
        if raw is None:
            raise bad("not a linncore FitHistory file (no __meta__ member)")
        if raw.dtype.kind != "U" or raw.shape != ():
            raise bad(
                f"__meta__: expected one JSON string, got dtype {raw.dtype} of shape {raw.shape}"
            )
        meta = _untrusted.loads_json(
            str(raw),
            label=f"{label}: __meta__",
            max_depth=64,
            allow_constants=True,
            error=HistoryFileError,
        )
        if not isinstance(meta, dict):
            raise bad(f"__meta__: expected a JSON object, got {_untrusted.kind(meta)}")
        if meta.get("format") != _FORMAT:
            raise bad(
                f"__meta__.format: expected {_FORMAT!r}, got {_untrusted.kind(meta.get('format'))}"
            )
        version = positive_int(meta.get("version"), "__meta__.version", error=bad)
        if version > _VERSION:
            raise bad(
                f"written by a newer linncore (FitHistory format {version}, this reads up to "
                f"{_VERSION}); upgrade linncore"
            )
        seed, stop, config = meta.get("seed"), meta.get("stop_reason"), meta.get("config")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise bad(f"__meta__.seed: expected an integer or null, got {_untrusted.kind(seed)}")
        if stop is not None and not isinstance(stop, str):
            raise bad(
                f"__meta__.stop_reason: expected a string or null, got {_untrusted.kind(stop)}"
            )
        if config is not None and not isinstance(config, dict):
            raise bad(f"__meta__.config: expected an object or null, got {_untrusted.kind(config)}")
        arrays = {}
        for name, arr in members.items():
            if not name.startswith(_PREFIX):
                raise bad(
                    f"member {_untrusted.short(name)}: not a metric (expected {_PREFIX}<name>)"
                )
            if arr.dtype.kind == "U":
                raise bad(f"member {_untrusted.short(name)}: expected numbers, got text")
            arrays[name[len(_PREFIX) :]] = arr
        try:
            return cls(arrays, config=config, seed=seed, stop_reason=stop)
        except (TypeError, ValueError) as exc:
            raise bad(_untrusted.clip(str(exc))) from None

    # -- plots ---------------------------------------------------------------------------
    def plot_results(
        self,
        path: str | os.PathLike | None = None,
        *,
        title: str | None = None,
        run: str | None = None,
    ):
        """Draw the standard panels, one quantity with one unit per axis: loss, update norms,
        update direction, curvature, the controller, stability margins, the Hessian's
        extreme eigenvalues and rail pressure.  Needs matplotlib (``pip install linncore[plot]``).

        A panel whose series are all non-negative and span more than two decades gets a log
        axis (symmetric-log when some values are exactly 0, so that they stay visible); legends
        sit outside the axes, right of the data; a panel the run did not log
        says so.

        Parameters
        ----------
        path : str or PathLike, optional
            Also save the figure there (format from the extension).
        title : str, optional
            The figure's title; default: the network, learning rate, controller, precision
            and seed of the run (from :attr:`config`).
        run : str, optional
            A name put first in the default title, e.g. a sweep's run id.

        Returns
        -------
        matplotlib.figure.Figure
        """
        plt = _pyplot()
        steps = self._arrays.get("step", np.arange(len(self)))
        fig, axes = plt.subplots(len(_PANELS), 1, figsize=(11, 2.1 * len(_PANELS)), sharex=True)
        for ax, (name, ylabel, keys, refs) in zip(axes, _PANELS, strict=True):
            series = [
                (k, self._arrays[k])
                for k in keys
                if k in self._arrays and np.any(np.isfinite(self._arrays[k]))
            ]
            ax.set_title(name if series else f"{name} (not logged)", fontsize=9, loc="left")
            ax.set_ylabel(ylabel, fontsize=8)
            ax.tick_params(labelsize=7)
            if not series:
                ax.text(
                    0.5,
                    0.5,
                    "not logged in this run",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="grey",
                )
                ax.set_yticks([])
                continue
            finite = np.concatenate([a[np.isfinite(a)] for _, a in series])
            log = bool(
                np.all(finite[finite != 0] > 0)
                and np.any(finite > 0)
                and finite[finite > 0].max() > 100.0 * finite[finite > 0].min()
            )
            for k, a in series:
                ok = np.isfinite(a)
                ax.plot(steps[ok], a[ok], label=k, lw=1)
            for value, label in refs:
                color = "k" if value == 2.0 else "grey"
                ax.axhline(value, color=color, ls=":", lw=0.8, label=label)
            if log and np.any(finite == 0):  # exact zeros (a silent death) stay visible, at 0
                lo = float(finite[finite > 0].min())
                ax.set_yscale("symlog", linthresh=lo)
                decades = np.unique(
                    np.round(
                        np.linspace(np.floor(np.log10(lo)), np.ceil(np.log10(finite.max())), 6)
                    )
                )
                ax.set_yticks([0.0] + [10.0**d for d in decades])
            elif log:
                ax.set_yscale("log")
            else:  # no offset notation; a nearly constant series gets a span of 2% of its size
                ax.ticklabel_format(axis="y", useOffset=False)
                lo, hi = float(finite.min()), float(finite.max())
                span = 0.02 * max(abs(lo), abs(hi), 1e-12)
                if hi - lo < span:
                    ax.set_ylim((lo + hi) / 2 - span, (lo + hi) / 2 + span)
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        axes[-1].set_xlabel("optimizer step")
        if title is None:
            title = self._title() if run is None else f"{run}: {self._title()}"
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        if path is not None:
            save_figure(fig, path, dpi=110)
        return fig

    def _title(self) -> str:
        """The run in one line: network, learning rate, controller, precision, seed."""
        c = self.config
        parts = [str(c.get("network", "training run"))]
        if "learning_rate" in c:
            parts.append(f"lr {c['learning_rate']:g}")
        if "use_controller" in c:
            parts.append(f"controller {'on' if c['use_controller'] else 'off'}")
        if "precision" in c:
            parts.append("float" if c["precision"] is None else "quantized")
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        if self.stop_reason:
            parts.append("DIVERGED")
        return " | ".join(parts)


# (panel title, y-axis label with units, series, reference lines (value, label))
_PANELS = (
    ("loss", "loss, rmse\n(target units^2, units)", ("loss", "rmse"), ()),
    ("update norms", "norm\n(parameter units)", ("raw_update_norm", "actual_update_norm"), ()),
    (
        "update direction",
        "cosine, ratio\n(dimensionless)",
        ("update_cosine", "update_radius_ratio"),
        (),
    ),
    (
        "curvature",
        "||dg|| / ||dtheta||\n(loss / param^2)",
        ("curvature_proxy", "curvature_ema"),
        (),
    ),
    ("learning-rate controller", "factor on eta\n(0 to 1)", ("alpha", "alpha_would"), ()),
    (
        "stability margins",
        "eta * lambda, radius\n(dimensionless)",
        (
            "stability_margin_lambda_raw",
            "stability_margin_lambda_ctrl",
            "spectral_radius_raw",
            "spectral_radius_ctrl",
        ),
        ((2.0, "eta * lambda = 2 (GD limit)"), (1.0, "radius = 1 (stable below)")),
    ),
    (
        "Hessian extremes",
        "eigenvalue\n(loss / param^2)",
        ("hessian_lambda_max", "hessian_lambda_min"),
        (),
    ),
    (
        "rail pressure",
        "fraction of values\n(0 to 1)",
        (
            "weight_saturation_fraction_max",
            "weight_near_rail_fraction_max",
            "gradient_saturation_fraction_max",
            "gradient_near_rail_fraction_max",
            "update_saturation_fraction_max",
            "update_underflow_fraction_max",
        ),
        (),
    ),
)


def _silently_dead(actual: np.ndarray, tail: float = 0.25) -> bool:
    """True when the applied updates of the last quarter of the run are all exactly zero."""
    n = len(actual)
    k = max(1, int(math.ceil(n * tail)))
    return bool(np.all(actual[-k:] == 0))


def _pyplot():
    try:
        import matplotlib

        if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'linncore[plot]'") from None
    return plt


def _versions() -> dict[str, str]:
    from .._version import __version__

    return {"linncore": __version__, "numpy": np.__version__, "python": platform.python_version()}
