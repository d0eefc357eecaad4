"""The progress display of long loops: epochs of ``fit`` and ``train_instrumented``, runs of
``sweep``.

One :class:`Progress` object per loop, told after every unit (epoch, run) how far the loop
is and what to show.  It chooses one of three forms:

- a bar rewritten in place (``verbose=1`` on a terminal): tqdm's when tqdm is installed (the
  ``progress`` extra) and the environment variable ``LINNCORE_NO_TQDM`` is not set, else a
  built-in one; both show the elapsed time, the ETA and the rate;
- lines (``verbose=1`` elsewhere, e.g. a log file or a notebook's captured output): one line
  for the first unit, then every tenth of the loop or every :data:`LINE_SECONDS` seconds,
  whichever comes first, and always the line of the last unit done, also when the loop ends
  early;
- one line per unit (``verbose=2``).

A line reads like Keras's: ``Epoch 3/100 - 0.4 ms/epoch - loss: 1.2345e-02 - val_loss: ...``,
the time being the mean per unit since the previous line.  The caller builds the text after
the time only when it is shown (``update`` takes a function), so a unit that is not shown
costs one clock read and a comparison.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Progress", "duration", "metric", "per_unit", "seconds"]

#: In line mode, the longest gap between two lines (seconds).
LINE_SECONDS = 10.0
#: The shortest gap between two redraws of a bar (seconds); the last unit is always drawn.
BAR_SECONDS = 0.1
_BAR_WIDTH = 24


def metric(value: float) -> str:
    """A logged number as Keras prints it: 4 decimals, or scientific when small."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4e}" if value != 0 and abs(value) < 1e-3 else f"{value:.4f}"


def per_unit(seconds: float, unit: str) -> str:
    """``0.4 ms/epoch``, ``85 us/epoch``, ``1.3 s/run``: a time per unit at 2-3 significant digits.

    Examples
    --------
    >>> per_unit(0.00042, "epoch"), per_unit(2.5, "run"), per_unit(8.5e-5, "epoch")
    ('0.42 ms/epoch', '2.50 s/run', '85.0 us/epoch')
    """
    for scale, at, name in ((1.0, 1.0, "s"), (1e-3, 1e-4, "ms"), (1e-6, 0.0, "us")):
        if seconds >= at:
            v = seconds / scale
            text = f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"
            return f"{text} {name}/{unit}"
    raise AssertionError("unreachable")  # the last scale always matches


def seconds(value: float) -> str:
    """A wall time: ``4.2 ms``, ``1.23 s``, ``02:03`` (minutes:seconds from a minute on)."""
    if value < 1.0:
        return f"{value * 1e3:.1f} ms" if value < 0.01 else f"{value * 1e3:.0f} ms"
    return f"{value:.2f} s" if value < 60.0 else duration(value)


def duration(seconds: float) -> str:
    """``00:03``, ``1:02:03``: elapsed times and ETAs as minutes:seconds (hours when needed)."""
    s = round(max(seconds, 0.0))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _rate(units_per_second: float, unit: str) -> str:
    if units_per_second >= 1.0 or units_per_second == 0.0:
        return f"{units_per_second:.1f} {unit}s/s"
    return f"{1.0 / units_per_second:.2f} s/{unit}"


def _tqdm_class() -> Any:
    """tqdm's progress bar class; None without tqdm or with LINNCORE_NO_TQDM set."""
    if os.environ.get("LINNCORE_NO_TQDM"):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class Progress:
    """A progress display over ``total`` units.

    Parameters
    ----------
    total : int
        Units the loop will run at most (epochs, runs).
    verbose : int
        1: a bar on a terminal, lines at intervals elsewhere; 2: a line per unit.  (0 means
        no display: callers then do not create one.)
    unit : str
        ``"epoch"``, ``"run"``: the name in lines (``Epoch 3/100``) and rates (``ms/epoch``).
    stream : file-like, optional
        Default ``sys.stdout`` at construction.
    desc : str, optional
        A label in front of the bar.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> p = Progress(3, verbose=2, unit="epoch", stream=out)
    >>> for done in (1, 2, 3):
    ...     p.update(done, lambda: "loss: 0.5000")
    >>> p.close()
    >>> [line.split(" - ")[0] for line in out.getvalue().splitlines()]
    ['Epoch 1/3', 'Epoch 2/3', 'Epoch 3/3']
    """

    def __init__(
        self,
        total: int,
        verbose: int = 1,
        unit: str = "epoch",
        stream: Any = None,
        desc: str | None = None,
    ) -> None:
        self.total = int(total)
        self.verbose = int(verbose)
        self.unit = unit
        self.stream = stream if stream is not None else sys.stdout
        self.desc = desc
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.mode = "bar" if (self.verbose == 1 and tty) else "lines"
        self._every = 1 if self.verbose >= 2 else max(1, self.total // 10)
        self._tqdm = None
        if self.mode == "bar":
            cls = _tqdm_class()
            if cls is not None:
                self._tqdm = cls(
                    total=self.total,
                    unit=unit,
                    file=self.stream,
                    desc=desc,
                    leave=True,
                    dynamic_ncols=True,
                    mininterval=BAR_SECONDS,
                )
        self.start = time.perf_counter()
        self.done = 0
        self._shown_done = 0  # units done at the last line or bar drawn
        self._shown_at = self.start  # when it was drawn
        self._pending: Callable[[], str] | None = None  # the text of the last unit, not yet shown
        self._width = 0  # of the last built-in bar, to blank it when it shrinks
        self._closed = False

    # -- the loop ------------------------------------------------------------------------
    def update(self, done: int, text: Callable[[], str] | str = "") -> None:
        """``done`` units are finished; ``text()`` is what to show after the unit's time."""
        now = time.perf_counter()
        self.done = done
        if self.mode == "bar":
            if self._tqdm is not None:
                self._tqdm.update(done - self._tqdm.n)
                if now - self._shown_at >= BAR_SECONDS or done >= self.total:
                    self._tqdm.set_postfix_str(_text(text), refresh=False)
                    self._shown_at = now
                else:
                    self._pending = text if callable(text) else (lambda: text)
                return
            if now - self._shown_at >= BAR_SECONDS or done >= self.total:
                self._bar(now, _text(text))
                self._pending = None
            else:
                self._pending = text if callable(text) else (lambda: text)
            return
        if (
            done % self._every == 0
            or done >= self.total
            or self._shown_done == 0
            or now - self._shown_at >= LINE_SECONDS
        ):
            self._line(now, _text(text))
            self._pending = None
        else:
            self._pending = text if callable(text) else (lambda: text)

    def write(self, message: str) -> None:
        """A message on a line of its own (below the bar when there is one)."""
        if self._tqdm is not None:
            self._tqdm.write(message, file=self.stream)
            return
        if self.mode == "bar" and self._width:
            self.stream.write("\n")
            self._width = 0
        self.stream.write(message + "\n")
        self.stream.flush()

    def close(self, messages: list[str] | tuple[str, ...] = ()) -> None:
        """End the display: show the last unit if it was not shown, then ``messages``."""
        if self._closed:
            return
        self._closed = True
        now = time.perf_counter()
        if self._tqdm is not None:
            if self._pending is not None:
                self._tqdm.set_postfix_str(self._pending(), refresh=False)
            self._tqdm.close()
            self._tqdm = None
        elif self.mode == "bar":
            if self._pending is not None or not self._width:
                self._bar(now, self._pending() if self._pending is not None else "")
            self.stream.write("\n")
            self._width = 0
        elif self._pending is not None:
            self._line(now, self._pending())
        self._pending = None
        for m in messages:
            self.stream.write(m + "\n")
        self.stream.flush()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    # -- the forms -----------------------------------------------------------------------
    def _line(self, now: float, text: str) -> None:
        n = self.done - self._shown_done
        parts = [f"{self.unit.capitalize()} {self.done}/{self.total}"]
        if n > 0:
            parts.append(per_unit((now - self._shown_at) / n, self.unit))
        if text:
            parts.append(text)
        self.stream.write(" - ".join(parts) + "\n")
        self.stream.flush()
        self._shown_done, self._shown_at = self.done, now

    def _bar(self, now: float, text: str) -> None:
        elapsed = now - self.start
        frac = min(self.done / self.total, 1.0) if self.total > 0 else 1.0
        filled = int(_BAR_WIDTH * frac)
        bar = (
            "=" * filled
            + (">" if filled < _BAR_WIDTH else "")
            + "." * max(_BAR_WIDTH - filled - 1, 0)
        )
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else math.inf
        parts = [
            f"{self.desc + ' ' if self.desc else ''}[{bar}] {self.done}/{self.total} {self.unit}s",
            f"{duration(elapsed)}<{duration(eta) if math.isfinite(eta) else '?'}",
            _rate(rate, self.unit),
        ]
        if text:
            parts.append(text)
        line = " - ".join(parts)
        self.stream.write("\r" + line + " " * max(self._width - len(line), 0))
        self.stream.flush()
        self._width = len(line)
        self._shown_done, self._shown_at = self.done, now


def _text(text: Callable[[], str] | str) -> str:
    return text() if callable(text) else text
