"""Sweeps: a grid of ablation configurations over seeds, run in parallel.

A run is described by a plain dict (JSON/TOML-able)::

    {"dataset": {"n": 1000, "d_in": 4, "d_out": 2, "noise": 0.0},        # LinearTeacherDataset
     "model": {"num_hidden": [], "activation": None, "use_bias": False, "clip": False},
     "train": {"epochs": 10, "learning_rate": 0.05, "use_controller": False,
               "precision_dict": None}}

A grid maps dotted keys (``"train.learning_rate"``) to lists of values; :func:`sweep` runs
the Cartesian product of the grid on top of a base configuration, once per seed.  The seed
makes the dataset, the initial weights and the training reproducible.
"""

from __future__ import annotations

import copy
import csv
import inspect
import io
import itertools
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._util.atomic import atomic_write
from .._util.progress import Progress, metric, per_unit, seconds
from .._util.untrusted import short as _short
from .._util.validate import non_negative_int, positive_int
from .fit_history import FitHistory

__all__ = ["sweep", "SweepResult", "run_config", "check_config", "expand_grid", "DEFAULT_CONFIG"]

DEFAULT_CONFIG: dict[str, Any] = {
    "dataset": {"n": 1000, "d_in": 4, "d_out": 2, "noise": 0.0, "teacher_scale": 0.5},
    "model": {
        "num_hidden": [],
        "activation": None,
        "use_bias": False,
        "clip": False,
        "dtype": "float64",
    },
    "train": {"epochs": 10, "batch_size": 32, "learning_rate": 0.05},
}
_SECTIONS = ("dataset", "model", "train")
#: The most runs (grid points times seeds) one sweep takes; counted before the grid is expanded.
MAX_RUNS = 100_000
#: The most values (samples times inputs plus outputs) a run's dataset may hold (400 MB of
#: float64), and the most parameters its network may have; checked before anything is built.
MAX_DATASET_VALUES = 50_000_000
MAX_PARAMS = 16_000_000


def _merge(base: Mapping, over: Mapping) -> dict:
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _set_dotted(config: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    if len(parts) != 2 or parts[0] not in _SECTIONS:
        raise ValueError(
            f"grid: keys are 'section.name' with section one of {_SECTIONS}, got {key!r}"
        )
    config[parts[0]][parts[1]] = value


def expand_grid(
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The points of a grid: a dict of lists (Cartesian product) or a list of dicts."""
    if isinstance(grid, Mapping):
        size = 1
        for k, v in grid.items():
            if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or not len(v):
                raise ValueError(
                    f"grid[{_short(k)}]: expected a non-empty list of values, got {_short(v)}"
                )
            size *= len(v)
            if size > MAX_RUNS:
                raise ValueError(
                    f"grid: {_grid_size(grid)} points, more than the limit of {MAX_RUNS} runs"
                )
        keys = list(grid)
        return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    points = list(itertools.islice(grid, MAX_RUNS + 1))
    if len(points) > MAX_RUNS:
        raise ValueError(f"grid: more than the limit of {MAX_RUNS} points")
    for i, p in enumerate(points):
        if not isinstance(p, Mapping):
            raise ValueError(
                f"grid[{i}]: expected a mapping of dotted keys to values, got {_short(p)}"
            )
    return [dict(p) for p in points]


def _grid_size(grid: Mapping[str, Sequence[Any]]) -> str:
    """The number of points of a grid, written short (10**12 points is quoted as such)."""
    size = 1
    for v in grid.values():
        size *= len(v)
    return str(size) if size < 10**15 else f"about 10**{len(str(size)) - 1}"


def _check_sizes(cfg: Mapping[str, Any]) -> None:
    """Sizes of the dataset and network against memory, before either is built."""
    ds, model = cfg["dataset"], cfg["model"]
    dims = {}
    for key in ("n", "d_in", "d_out"):
        dims[key] = positive_int(ds.get(key), f"dataset.{key}")
    values = dims["n"] * (dims["d_in"] + dims["d_out"])
    if values > MAX_DATASET_VALUES:
        raise ValueError(
            f"dataset: n * (d_in + d_out) = {_short(values)} values, more than the limit of "
            f"{MAX_DATASET_VALUES}"
        )
    hidden = model.get("num_hidden", [])
    if isinstance(hidden, (str, bytes, Mapping)) or not isinstance(hidden, Sequence):
        raise ValueError(f"model.num_hidden: expected a list of layer widths, got {_short(hidden)}")
    widths = [dims["d_in"]]
    for i, w in enumerate(hidden):
        widths.append(positive_int(w, f"model.num_hidden[{i}]"))
    widths.append(dims["d_out"])
    params = sum(a * b + b for a, b in itertools.pairwise(widths))
    if params > MAX_PARAMS:
        raise ValueError(f"model: {_short(params)} parameters, more than the limit of {MAX_PARAMS}")


def _allowed_keys() -> dict[str, set[str]]:
    """The keys each section accepts: the parameters of what the section configures."""
    from .datasets import LinearTeacherDataset
    from .instrumented import train_instrumented
    from .linear_block import LinearBlockModel

    def params(fn, drop):
        return {p for p in inspect.signature(fn).parameters if p not in drop}

    return {
        "dataset": params(LinearTeacherDataset.__init__, {"self", "seed"}),
        "model": params(LinearBlockModel.__init__, {"self", "dataset", "seed"}),
        "train": params(train_instrumented, {"net", "X", "Y", "seed", "verbose"}),
    }


#: Strings that mean "no precision config" (full float) where a precision config is expected.
FLOAT_WORDS = ("float", "none")


def _resolve_precision(train: dict) -> None:
    """A ``precision_dict`` given as a string is ``"float"`` (or ``"none"``: no quantization) or
    the path of a PrecisionDict JSON file."""
    pd = train.get("precision_dict")
    if isinstance(pd, str) and pd.strip().lower() in FLOAT_WORDS:
        train["precision_dict"] = None
    elif isinstance(pd, (str, os.PathLike)):
        from ..fixed.precision import PrecisionDict

        try:
            train["precision_dict"] = PrecisionDict.load(pd).to_dict()
        except OSError as exc:
            raise ValueError(
                f"train.precision_dict: cannot read {os.fspath(pd)!r} ({exc.strerror or exc})"
            ) from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"train.precision_dict: {os.fspath(pd)!r}: {exc}") from None


def _build(config: Mapping[str, Any], seed: int):
    from .datasets import LinearTeacherDataset
    from .linear_block import LinearBlockModel

    cfg = _merge(DEFAULT_CONFIG, config)
    unknown = set(cfg) - set(_SECTIONS)
    if unknown:
        raise ValueError(f"config: unknown section(s) {sorted(unknown)}; expected {_SECTIONS}")
    allowed = _allowed_keys()
    for section in _SECTIONS:
        if not isinstance(cfg[section], Mapping):
            raise ValueError(f"{section}: expected a table of settings, got {cfg[section]!r}")
        extra = sorted(set(cfg[section]) - allowed[section])
        if extra:
            raise ValueError(
                f"{section}.{extra[0]}: unknown key; [{section}] accepts "
                f"{', '.join(sorted(allowed[section]))}"
            )
    _check_sizes(cfg)
    _resolve_precision(cfg["train"])
    try:
        ds = LinearTeacherDataset(**cfg["dataset"], seed=seed)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"dataset.{exc}") from None
    try:
        model = LinearBlockModel(ds, **cfg["model"], seed=seed)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"model.{exc}") from None
    return cfg, model


def check_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Check a run configuration without training: unknown sections or keys, the dataset and
    model arguments and the precision config (against the model's layer names).

    Returns
    -------
    dict
        The full configuration (defaults filled in, a precision-config path read).

    Raises
    ------
    ValueError, TypeError
        Naming the offending key as ``section.name``.
    """
    cfg, model = _build(config, 0)
    pd = cfg["train"].get("precision_dict")
    if pd is not None:
        try:
            model.network._qat_arrays(pd)  # the check train_instrumented makes before training
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"train.precision_dict: {exc}") from None
    return cfg


def run_config(config: Mapping[str, Any], seed: int) -> tuple[dict[str, float], FitHistory]:
    """Run one configuration with one seed: (summary, history).  Module-level, so that
    process pools and distributed executors can pickle it.

    Parameters
    ----------
    config : dict
        Sections ``dataset``, ``model`` and ``train`` (see the module docstring); missing
        settings take :data:`DEFAULT_CONFIG`'s values.
    seed : int
        Seeds the dataset, the initial weights and the training.

    Returns
    -------
    (dict, FitHistory)
        :meth:`FitHistory.summary` of the run, and the history.
    """
    cfg, model = _build(config, seed)
    history = model.train_instrumented(**cfg["train"], seed=seed)
    history.config["run"] = {"config": cfg, "seed": seed}
    return history.summary(), history


@dataclass
class SweepResult:
    """The table of a sweep (one row per run) and each run's history."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    histories: dict[str, FitHistory] = field(default_factory=dict)

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """The table as CSV (written atomically to ``path`` when given).

        Every cell is written as its type reads: integers as integers (``8``), booleans as
        ``true``/``false`` (as in JSON and the TOML config), floats in their shortest exact
        form (``nan`` for NaN), None as an empty cell, lists and tables as JSON.

        Examples
        --------
        >>> table = SweepResult(rows=[{"run": "r0", "seed": 0, "steps": 8, "diverged": False,
        ...                            "final_loss": 0.25, "train.precision_dict": None}])
        >>> table.to_csv().splitlines()[1]
        'r0,0,8,false,0.25,'
        """
        cols = list(dict.fromkeys(k for row in self.rows for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
        text = buf.getvalue()
        if path is not None:
            with atomic_write(path) as fh:
                fh.write(text)
        return text

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(self.rows, indent=1, allow_nan=True)
        if path is not None:
            with atomic_write(path) as fh:
                fh.write(text)
        return text

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``summary.csv``, ``summary.json`` and ``histories/<run>.npz`` into ``folder``."""
        out = Path(folder)
        (out / "histories").mkdir(parents=True, exist_ok=True)
        self.to_csv(out / "summary.csv")
        self.to_json(out / "summary.json")
        for run_id, h in self.histories.items():
            h.save(out / "histories" / f"{run_id}.npz")
        return out


def _one_thread() -> None:
    """Initializer of the sweep's own worker processes: one kernel thread each (the default is
    one per CPU), so that the workers together run no more threads than there are CPUs.

    Test hook: ``tests/ablation/test_sweep.py`` starts a process pool with it, since what a
    worker process sets is not visible in the sweep's results."""
    from .._backend import set_num_threads

    set_num_threads(1)


def sweep(
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    seeds: Iterable[int] = (0,),
    base: Mapping[str, Any] | None = None,
    executor: Executor | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    verbose: int = 0,
) -> SweepResult:
    """Run every point of ``grid`` (on top of ``base``) once per seed.

    Parameters
    ----------
    grid : dict of str to list, or list of dict
        Dotted keys such as ``"train.learning_rate"``, ``"train.use_controller"``,
        ``"train.precision_dict"`` (a config, a PrecisionDict file's path, or ``"float"``
        for none, as in ``linncore ablate``), ``"model.num_hidden"``.
    seeds : iterable of int
    base : dict, optional
        The configuration the grid points modify (see the module docstring).
    executor : concurrent.futures.Executor, optional
        Where the runs execute: any executor works, e.g. a Dask distributed client's
        ``get_executor()``; default a local ``ProcessPoolExecutor``.  Runs are collected in
        grid order whatever order they finish in.
    progress : callable, optional
        Called as ``progress(done, total, row)`` as each run finishes (in finishing order).
    verbose : int
        0 silent (default); 1 a bar over the runs on a terminal (tqdm's when tqdm is
        installed), elsewhere a line every tenth of the runs and always the last; 2 a line per
        run.  A line names the run and its final loss and flags (``DIVERGED``,
        ``SILENT-DEATH``) and carries the time per run.

    Raises
    ------
    ValueError, TypeError
        Before any run starts, for a bad grid, base or seed list, naming the key
        (``grid['train.learning_rate']``, ``train.learnin_rate: unknown key``, ...).
    RuntimeError
        A run failed; the message names the run, its grid point and seed.

    Returns
    -------
    SweepResult
        ``rows``: one dict per run with the grid values, the seed and the history summary
        (final loss, divergence, silent death, max rail fractions, min update cosine, ...);
        ``histories``: each run's :class:`FitHistory` by run id.

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> res = sweep({"train.learning_rate": [0.05, 0.1]}, seeds=[0],
    ...             base={"dataset": {"n": 64}, "train": {"epochs": 1}},
    ...             executor=ThreadPoolExecutor(1))
    >>> [row["train.learning_rate"] for row in res.rows]
    [0.05, 0.1]
    """
    points = expand_grid(grid)
    try:
        given = list(itertools.islice(seeds, MAX_RUNS + 1))
    except TypeError:
        raise TypeError(
            f"seeds: expected an iterable of ints, got {type(seeds).__name__}"
        ) from None
    seeds = [non_negative_int(s, f"seeds[{i}]") for i, s in enumerate(given)]
    if not seeds:
        raise ValueError("seeds: expected at least one seed")
    if len(set(seeds)) != len(seeds):
        twice = next(s for k, s in enumerate(seeds) if s in seeds[:k])
        raise ValueError(f"seeds: seed {twice} appears twice; each seed runs once per grid point")
    if len(points) * len(seeds) > MAX_RUNS:
        raise ValueError(
            f"grid and seeds: {len(points)} points times {len(seeds)} seeds, more than the "
            f"limit of {MAX_RUNS} runs"
        )
    if base is not None and not isinstance(base, Mapping):
        raise TypeError(f"base: expected a mapping of sections, got {type(base).__name__}")
    base = _merge(DEFAULT_CONFIG, base or {})
    if (
        executor is not None
        and not isinstance(executor, Executor)
        and not callable(getattr(executor, "submit", None))
    ):
        raise TypeError(
            f"executor: expected a concurrent.futures.Executor, got {type(executor).__name__}"
        )
    jobs = []
    for i, point in enumerate(points):
        cfg = copy.deepcopy(base)
        for k, v in point.items():
            _set_dotted(cfg, k, v)
        try:  # fail before any run starts, naming the grid point
            cfg = check_config(cfg)
        except (TypeError, ValueError) as exc:
            where = f"grid point {i} ({_label(point)})" if point else "base"
            raise type(exc)(f"{where}: {exc}") from None
        for seed in seeds:
            jobs.append((f"run{i:03d}_seed{seed}", point, cfg, seed))
    verbose = non_negative_int(verbose, "verbose")
    own = executor is None
    # its own pool fills the CPUs with processes, so each runs its kernels on one thread
    ex: Executor = (
        ProcessPoolExecutor(
            max_workers=min(len(jobs), os.cpu_count() or 1), initializer=_one_thread
        )
        if executor is None
        else executor
    )
    result = SweepResult()
    rows: list[dict[str, Any] | None] = [None] * len(jobs)
    histories: list[FitHistory | None] = [None] * len(jobs)
    display = Progress(len(jobs), verbose, "run", desc="sweep") if verbose else None
    try:
        futures = {ex.submit(run_config, cfg, seed): j for j, (_, _, cfg, seed) in enumerate(jobs)}
        for done, fut in enumerate(as_completed(futures), start=1):
            j = futures[fut]
            run_id, point, _, seed = jobs[j]
            try:
                summary, history = fut.result()
            except Exception as exc:
                for other in futures:
                    other.cancel()
                raise RuntimeError(
                    f"{run_id} ({_label(point) or 'base'}, seed {seed}) failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            row = {"run": run_id, **point, "seed": seed, **summary}
            rows[j], histories[j] = row, history
            if progress is not None:
                progress(done, len(jobs), row)
            if display is not None:
                display.update(done, _run_text(row))
    finally:
        if own:
            ex.shutdown(cancel_futures=True)
        if display is not None:
            n = display.done
            display.close(
                [
                    f"swept {n} run(s) of {len(jobs)} in {seconds(display.elapsed)}"
                    + (f" ({per_unit(display.elapsed / n, 'run')})" if n else "")
                ]
            )
    for j, (run_id, *_rest) in enumerate(jobs):  # grid order, whatever order the runs finished in
        finished, its_history = rows[j], histories[j]
        # every run finished, or the sweep raised
        assert finished is not None and its_history is not None
        result.rows.append(finished)
        result.histories[run_id] = its_history
    return result


def _cell(v: Any) -> Any:
    """A CSV cell of a table value (see :meth:`SweepResult.to_csv`)."""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, allow_nan=True)
    return "" if v is None else v


def _run_text(row: Mapping[str, Any]) -> str:
    flags = [
        f for f, k in (("DIVERGED", "diverged"), ("SILENT-DEATH", "silent_death")) if row.get(k)
    ]
    return f"{row['run']} - final_loss: {metric(row['final_loss'])} - {' '.join(flags) or 'ok'}"


def _label(point: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k}={_short(v)}" if not isinstance(v, Mapping) else f"{k}={{...}}"
        for k, v in point.items()
    )
