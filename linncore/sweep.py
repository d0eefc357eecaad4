"""Sweeps: a grid of ablation configurations over seeds, run in parallel.

A run is described by a plain dict (JSON/TOML-able)::

    {"dataset": {"n": 1000, "d_in": 4, "d_out": 2, "noise": 0.0},        # LinearTeacherDataset
     "model": {"num_hidden": [], "activation": None, "use_bias": False, "clip": False},
     "train": {"epochs": 10, "learning_rate": 0.05, "use_controller": False, "precision_dict": None}}

A grid maps dotted keys (``"train.learning_rate"``) to lists of values; :func:`sweep` runs
the Cartesian product of the grid on top of a base configuration, once per seed.  The seed
makes the dataset, the initial weights and the training reproducible.
"""
from __future__ import annotations

import copy
import csv
import io
import itertools
import json
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ._atomic import atomic_write
from .history import FitHistory

__all__ = ["sweep", "SweepResult", "run_config", "DEFAULT_CONFIG"]

DEFAULT_CONFIG: dict[str, Any] = {
    "dataset": {"n": 1000, "d_in": 4, "d_out": 2, "noise": 0.0, "teacher_scale": 0.5},
    "model": {"num_hidden": [], "activation": None, "use_bias": False, "clip": False, "dtype": "float64"},
    "train": {"epochs": 10, "batch_size": 32, "learning_rate": 0.05},
}
_SECTIONS = ("dataset", "model", "train")


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
        raise ValueError(f"grid: keys are 'section.name' with section one of {_SECTIONS}, got {key!r}")
    config[parts[0]][parts[1]] = value


def expand_grid(grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The points of a grid: a dict of lists (Cartesian product) or a list of dicts."""
    if isinstance(grid, Mapping):
        for k, v in grid.items():
            if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or not len(v):
                raise ValueError(f"grid[{k!r}]: expected a non-empty list of values, got {v!r}")
        keys = list(grid)
        return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    points = list(grid)
    for i, p in enumerate(points):
        if not isinstance(p, Mapping):
            raise ValueError(f"grid[{i}]: expected a mapping of dotted keys to values, got {p!r}")
    return [dict(p) for p in points]


def run_config(config: Mapping[str, Any], seed: int) -> tuple[dict[str, float], FitHistory]:
    """Run one configuration with one seed: (summary, history).  Module-level, so that
    process pools and distributed executors can pickle it."""
    from .datasets import LinearTeacherDataset
    from .models import LinearBlockModel

    cfg = _merge(DEFAULT_CONFIG, config)
    unknown = set(cfg) - set(_SECTIONS)
    if unknown:
        raise ValueError(f"config: unknown section(s) {sorted(unknown)}; expected {_SECTIONS}")
    ds = LinearTeacherDataset(**cfg["dataset"], seed=seed)
    model = LinearBlockModel(ds, **cfg["model"], seed=seed)
    history = model.train_instrumented(**cfg["train"], seed=seed)
    history.config["run"] = {"config": cfg, "seed": seed}
    return history.summary(), history


@dataclass
class SweepResult:
    """The table of a sweep (one row per run) and each run's history."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    histories: dict[str, FitHistory] = field(default_factory=dict)

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """The table as CSV (written atomically to ``path`` when given)."""
        cols = list(dict.fromkeys(k for row in self.rows for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols)
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
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


def sweep(grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]], seeds: Iterable[int] = (0,),
          base: Mapping[str, Any] | None = None, executor: Executor | None = None,
          progress: Callable[[int, int, dict], None] | None = None) -> SweepResult:
    """Run every point of ``grid`` (on top of ``base``) once per seed.

    Parameters
    ----------
    grid : dict of str to list, or list of dict
        Dotted keys such as ``"train.learning_rate"``, ``"train.use_controller"``,
        ``"train.precision_dict"``, ``"model.num_hidden"``.
    seeds : iterable of int
    base : dict, optional
        The configuration the grid points modify (see the module docstring).
    executor : concurrent.futures.Executor, optional
        Where the runs execute: any executor works, e.g. a Dask distributed client's
        ``get_executor()``; default a local ``ProcessPoolExecutor``.  Runs are collected in
        grid order whatever order they finish in.
    progress : callable, optional
        Called as ``progress(done, total, row)`` after each run.

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
    ...             base={"dataset": {"n": 64}, "train": {"epochs": 1}}, executor=ThreadPoolExecutor(1))
    >>> [row["train.learning_rate"] for row in res.rows]
    [0.05, 0.1]
    """
    points = expand_grid(grid)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: expected at least one seed")
    base = _merge(DEFAULT_CONFIG, base or {})
    jobs = []
    for i, point in enumerate(points):
        cfg = copy.deepcopy(base)
        for k, v in point.items():
            _set_dotted(cfg, k, v)
        for seed in seeds:
            jobs.append((f"run{i:03d}_seed{seed}", point, cfg, seed))
    own = executor is None
    ex = ProcessPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) if own else executor
    result = SweepResult()
    try:
        futures = [ex.submit(run_config, cfg, seed) for _, _, cfg, seed in jobs]
        for done, ((run_id, point, _, seed), fut) in enumerate(zip(jobs, futures), start=1):
            summary, history = fut.result()
            row = {"run": run_id, **point, "seed": seed, **summary}
            result.rows.append(row)
            result.histories[run_id] = history
            if progress is not None:
                progress(done, len(jobs), row)
    finally:
        if own:
            ex.shutdown()
    return result
