"""The vendor's tutorial notebooks, run end to end through linncore and timed.

Run: python bench/bench_notebooks.py [PATH] [--notebooks a,b] [--repeat R] [--timeout S]
                                     [--vendor] [--extra] [--keep DIR] [--json FILE]
                                     [--profile [PY_SPY]] [--threads N]

PATH is a checkout (or an extract) of the vendor's public repository
``liquidinstruments/moku-examples``, or its ``neural-network`` folder; without it the
``MOKU_EXAMPLES`` environment variable is read.  Nothing of that repository is copied into
linncore: the notebooks are read where they are and run in a temporary copy of their folder.

The nine tutorial notebooks are the top-level ``neural-network/*.ipynb`` that build a network
with ``moku.nn.LinnModel``, train it with ``fit_model`` on data they make themselves, and
(all but one) write a ``.linn`` file:

  Simple_sine, Sum, Sum_Pro, Classification, Autoencoder, Autoencoder_Pro, DFT,
  Emitter_control, Signal_ID

The others in that folder are not counted: ``Identity_NN`` trains nothing (it sets identity
weights by hand and saves them; ``--extra`` runs it as a compatibility check), and the two
``Anomaly_detection`` notebooks take their training data from an instrument through
``moku.instruments``.

Each notebook's code cells become one script, run in a fresh interpreter with a timeout,
in a temporary copy of the notebook's folder (so it finds the files it reads, such as
``emitter_simulator.py``), with matplotlib's Agg backend (figures are drawn, never shown).
The script is the notebook's code with these changes only, each listed in the table's notes:

  - ``from moku.nn import ...`` reads ``from linncore import ...`` (the one-import
    migration); with ``--vendor`` the vendor path also runs, with the import as written;
  - IPython lines (``%matplotlib inline``, ``!pip install ...``) become ``pass``;
  - ``from moku.instruments import ...`` (instrument connections) is dropped;
  - on the linncore path, ``import tensorflow as tf`` and ``tf.random.set_seed(...)`` are
    dropped: TensorFlow is not a dependency of linncore and its seed reaches nothing there
    (Emitter_control seeds it).

A timing shim (loaded before the notebook's first line, changing nothing it computes) splits
each run's time between the notebook's own code (data generation, simulation, plotting,
the interpreter's start) and linncore: its import, set_training_data, construct_model,
fit_model, predict and save_linn.  It also records how many epochs each fit_model ran: most
tutorials stop early, so a time means little without its epoch count.  The tutorials seed
NumPy's global generator but not the network: the initial weights and the shuffling are
drawn afresh on every run (with the vendor's Keras as with linncore), and Signal_ID also
draws its data from Python's unseeded ``random``, so epoch counts, and times, vary from run
to run.

The report gives, per notebook and in all, the wall time and the CPU time with linncore's
share (its import and calls) and the rest, the notebook's own ("own": its code, imports,
plotting and the interpreter's start), then the floor: what the notebooks' own code takes
without any linncore time, and each notebook whose own code alone exceeds the 15 s target
of issue 14.  With ``--profile`` each notebook runs once more under the sampling profiler
py-spy (installed apart from linncore: ``pip install py-spy``), and its own CPU time is split
in the proportions of the samples between imports, matplotlib's drawing, the notebook's
code (with the NumPy and SciPy it calls) and the rest.

Times are the best of ``--repeat`` runs: wall-clock seconds of the whole subprocess, and its
CPU time (user + system), which a machine busy with other work inflates less.  The library
is imported once before the runs so that its bytecode is cached, as an installed package's
is (``PYTHONDONTWRITEBYTECODE`` would otherwise make every run compile linncore's sources),
and the runs read the installed packages' own bytecode caches (``PYTHONPYCACHEPREFIX`` is
unset: with it, every run would compile SciPy, tqdm and the parts of matplotlib the warm-up
does not import, seconds that no user of an installed environment pays).
The vendor path (``--vendor``, off by default: about nine minutes on an idle machine) runs
in the interpreter given by ``--vendor-python`` (default: the peers' virtual environment),
which must have ``moku[neuralnetwork]`` and TensorFlow.  The machine's CPU is printed first.
Speed is never asserted: a notebook that fails or times out is reported, and the exit status
is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NOTEBOOKS = (
    "Simple_sine",
    "Sum",
    "Sum_Pro",
    "Classification",
    "Autoencoder",
    "Autoencoder_Pro",
    "DFT",
    "Emitter_control",
    "Signal_ID",
)
EXTRA = ("Identity_NN",)
VENDOR_PYTHON = "/work/peers/venv/bin/python"
PHASES = (
    "import",
    "set_training_data",
    "construct_model",
    "fit_model",
    "predict",
    "save_linn",
)

# The shim the notebook's script starts with.  It imports NumPy (every notebook does) and then
# the library, timed; wraps the library's entry points with timers (outermost call only)
# before the notebook imports them; and writes what it measured to the file named by
# NBBENCH_OUT when the script ends (normally or not).
SHIM = r"""
import atexit as _nb_atexit, json as _nb_json, os as _nb_os, time as _nb_time
_nb_t0 = _nb_time.perf_counter()
_NB = {"phases": {}, "cpu": {}, "epochs": [], "cells": []}
_nb_depth = [0]
def _nb_timed(name, fn):
    def wrapper(*args, **kwargs):
        if _nb_depth[0]:
            return fn(*args, **kwargs)
        _nb_depth[0] += 1
        t, c = _nb_time.perf_counter(), _nb_time.process_time()
        try:
            out = fn(*args, **kwargs)
        finally:
            _NB["phases"][name] = _NB["phases"].get(name, 0.0) + _nb_time.perf_counter() - t
            _NB["cpu"][name] = _NB["cpu"].get(name, 0.0) + _nb_time.process_time() - c
            _nb_depth[0] -= 1
        if name == "fit_model":
            _NB["epochs"].append(len(out.history.get("loss", [])))
        return out
    wrapper.__wrapped__ = fn
    return wrapper
import importlib as _nb_importlib
import numpy as _nb_numpy  # every notebook imports it: the library's is timed without it
_nb_t, _nb_c = _nb_time.perf_counter(), _nb_time.process_time()
_nb_lib = _nb_importlib.import_module(_nb_os.environ["NBBENCH_LIBRARY"])
_NB["phases"]["import"] = _nb_time.perf_counter() - _nb_t
_NB["cpu"]["import"] = _nb_time.process_time() - _nb_c
for _nb_name in ("set_training_data", "construct_model", "fit_model", "predict"):
    setattr(_nb_lib.LinnModel, _nb_name,
            _nb_timed(_nb_name, getattr(_nb_lib.LinnModel, _nb_name)))
if hasattr(_nb_lib, "save_linn"):
    _nb_lib.save_linn = _nb_timed("save_linn", _nb_lib.save_linn)
_nb_cell_t = [None, None]
def _nb_cell(index):
    now = _nb_time.perf_counter()
    if _nb_cell_t[0] is not None:
        _NB["cells"].append([_nb_cell_t[0], now - _nb_cell_t[1]])
    _nb_cell_t[0], _nb_cell_t[1] = index, now
def _nb_write():
    import resource as _nb_resource
    _nb_cell(None)
    _NB["total"] = _nb_time.perf_counter() - _nb_t0
    _nb_use = _nb_resource.getrusage(_nb_resource.RUSAGE_SELF)
    _NB["cpu_self"] = _nb_use.ru_utime + _nb_use.ru_stime
    with open(_nb_os.environ["NBBENCH_OUT"], "w") as fh:
        _nb_json.dump(_NB, fh)
_nb_atexit.register(_nb_write)
del _nb_name
"""


@dataclass
class Script:
    """A notebook's code as one script, and what was changed on the way."""

    code: str
    notes: list[str] = field(default_factory=list)
    cells: int = 0


def cpu_name() -> str:
    """The CPU as /proc/cpuinfo names it, with the core count and the widest SIMD."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs"
    fields = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition(":") for line in text.splitlines()[:40])
        if v
    )
    name = fields.get("model name", platform.machine())
    zen = {(23, 1): "Zen", (23, 49): "Zen 2", (25, 1): "Zen 3", (25, 17): "Zen 4"}
    family, model = int(fields.get("cpu family", 0)), int(fields.get("model", 0))
    if "AMD" in name and (family, model) in zen:
        name += f" ({zen[family, model]})"
    simd = "AVX-512" if " avx512f" in text else "AVX2" if " avx2" in text else "SSE"
    kind = "vCPUs" if " hypervisor" in text else "logical CPUs"
    return f"{name}, {os.cpu_count()} {kind}, {simd}"


def notebook_folder(path: str | None) -> Path:
    """The folder holding the notebooks, from PATH or MOKU_EXAMPLES, or a clear error."""
    given = path or os.environ.get("MOKU_EXAMPLES")
    if not given:
        raise SystemExit(
            "bench_notebooks: give the path of a moku-examples checkout (or its "
            "neural-network folder) as an argument or in MOKU_EXAMPLES; the repository is "
            "github.com/liquidinstruments/moku-examples"
        )
    base = Path(given).expanduser()
    for folder in (base / "neural-network", base):
        if (folder / "Simple_sine.ipynb").is_file():
            return folder
    raise SystemExit(
        f"bench_notebooks: {str(base)!r} holds neither neural-network/Simple_sine.ipynb nor "
        "Simple_sine.ipynb; expected a checkout of liquidinstruments/moku-examples"
    )


_MAGIC = re.compile(r"^(\s*)[%!]")
_MOKU_NN = re.compile(r"^(\s*)from\s+moku\.nn\s+import\s+")
_INSTRUMENTS = re.compile(r"^(\s*)(from\s+moku\.instruments\s+import|import\s+moku\.instruments)")
_TF_IMPORT = re.compile(r"^(\s*)import\s+tensorflow(?:\s+as\s+(\w+))?\s*$")


def _inside_statement(previous: list[str]) -> bool:
    """Whether a line after ``previous`` continues their statement (open bracket, ``\\``)."""
    lines = iter([line + "\n" for line in previous])
    try:
        for _ in tokenize.generate_tokens(lambda: next(lines, "")):
            pass
    except (tokenize.TokenError, SyntaxError):
        return True
    return False


def to_script(notebook: Path, library: str) -> Script:
    """The notebook's code cells as one script, the import pointed at ``library``.

    ``library`` is ``"linncore"`` (the import of moku.nn rewritten, TensorFlow's seeding
    dropped) or ``"moku.nn"`` (the vendor path, imports as written)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    lines: list[str] = []
    notes: list[str] = []
    tf_names: list[str] = []
    cells = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    for index, cell in enumerate(cells):
        source = cell["source"]
        text = "".join(source) if isinstance(source, list) else source
        lines.append(f"_nb_cell({index})")
        start = len(lines)
        for line in text.splitlines():
            m = _MAGIC.match(line)
            if m and not _inside_statement(lines[start:]):
                lines.append(f"{m.group(1)}pass  # IPython line: {line.strip()[:60]}")
                notes.append(f"IPython line dropped: {line.strip()[:40]}")
                continue
            m = _INSTRUMENTS.match(line)
            if m:
                lines.append(f"{m.group(1)}pass  # instrument connection dropped")
                notes.append("moku.instruments import dropped")
                continue
            m = _MOKU_NN.match(line)
            if m and library == "linncore":
                lines.append(_MOKU_NN.sub(r"\1from linncore import ", line))
                continue
            m = _TF_IMPORT.match(line)
            if m and library == "linncore":
                tf_names.append(m.group(2) or "tensorflow")
                lines.append(f"{m.group(1)}pass  # TensorFlow is not used by linncore")
                notes.append("TensorFlow import dropped")
                continue
            if library == "linncore" and any(
                re.match(rf"^\s*{re.escape(t)}\.random\.set_seed\(.*\)\s*$", line) for t in tf_names
            ):
                indent = line[: len(line) - len(line.lstrip())]
                lines.append(f"{indent}pass  # TensorFlow's seed reaches nothing in linncore")
                notes.append("tf.random.set_seed dropped")
                continue
            lines.append(line)
        lines.append("")
    return Script(SHIM + "\n".join(lines) + "\n", sorted(set(notes)), len(cells))


@dataclass
class Run:
    """One notebook run: status, wall time, and what the shim measured."""

    status: str
    wall: float
    cpu: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    phase_cpu: dict[str, float] = field(default_factory=dict)
    epochs: list[int] = field(default_factory=list)
    cells: list[list] = field(default_factory=list)
    tail: str = ""
    cpu_self: float = 0.0  # the interpreter's own CPU time, as it measured it at exit
    split: dict[str, float] = field(default_factory=dict)  # own-time samples per category


#: LINNCORE_NUM_THREADS for the runs (--threads); None leaves the environment as it is.
THREADS: int | None = None


def child_env(library: str, work: Path | None = None) -> dict[str, str]:
    """The environment of a run: Agg backend, the source tree first on the path, and the
    bytecode caches beside the sources (as in an installed environment) even where
    PYTHONDONTWRITEBYTECODE or PYTHONPYCACHEPREFIX is set."""
    env = dict(os.environ)
    if THREADS is not None:
        env["LINNCORE_NUM_THREADS"] = str(THREADS)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    env.update(
        MPLBACKEND="Agg",
        NBBENCH_LIBRARY=library,
        PYTHONPATH=os.pathsep.join([str(ROOT)] + ([str(work)] if work else [])),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    return env


def warm_up(python: str, library: str) -> None:
    """Import the library once, untimed, so that its bytecode is cached for the runs."""
    subprocess.run(
        [python, "-c", f"import numpy, matplotlib.pyplot, {library}"],
        env=child_env(library),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )


def run_script(
    script: Script,
    folder: Path,
    name: str,
    python: str,
    library: str,
    timeout: float,
    keep: Path,
    py_spy: str | None = None,
) -> Run:
    """Run the script in a fresh interpreter in a copy of ``folder``; time it.  With
    ``py_spy``, the interpreter runs under that sampling profiler and the run's ``split``
    says where the notebook's own time went (see :func:`own_split`)."""
    work = Path(tempfile.mkdtemp(prefix=f"nb-{name}-", dir=keep))
    shutil.copytree(
        folder,
        work,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("*.ipynb", "*.png", "*.mp4", ".git", "Screenshots"),
    )
    (work / f"{name}.py").write_text(script.code, encoding="utf-8")
    out = work / "nbbench.json"
    env = child_env(library, work)
    env["NBBENCH_OUT"] = str(out)
    log = work / "output.log"
    samples = work / "py-spy.txt"
    command = [python, f"{name}.py"]
    if py_spy:
        command = [py_spy, "record", "--nonblocking", "--rate", str(SAMPLE_RATE)]
        command += ["--format", "raw", "--output", str(samples), "--", python, f"{name}.py"]
    t = time.perf_counter()
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            command,
            cwd=work,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=timeout)
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = f"timed out after {timeout:g} s"
    wall = time.perf_counter() - t
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = now.ru_utime - used.ru_utime + now.ru_stime - used.ru_stime
    run = Run(status, wall, cpu)
    if out.is_file():
        data = json.loads(out.read_text())
        run.phases, run.phase_cpu = data["phases"], data["cpu"]
        run.epochs, run.cells = data["epochs"], data["cells"]
        run.cpu_self = data.get("cpu_self", 0.0)
    if py_spy and samples.is_file():
        local = {p.name for p in work.glob("*.py")}
        run.split = own_split(samples.read_text(errors="replace"), f"{name}.py", local)
    if status != "ok":
        run.tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    return run


SAMPLE_RATE = 100  # py-spy samples per second with --profile
#: Where a notebook's own time goes, as --profile splits it.
OWN_PARTS = ("imports", "matplotlib", "notebook code", "other")
_PLOTTING = ("matplotlib/", "mpl_toolkits/", "PIL/", "kiwisolver", "fontTools/", "contourpy/")
_FRAME = re.compile(r"^(?P<fn>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
SHIM_LINES = SHIM.count("\n")


def classify(stack: str, script: str, local: set[str]) -> str | None:
    """The part of one sampled stack (py-spy's raw format, outermost frame first): None inside
    linncore (the shim times that itself), ``imports`` while any module is being imported,
    else the innermost frame's owner: ``matplotlib`` (plotting), ``notebook code`` (the
    notebook's cells and the modules beside it, NumPy/SciPy/tqdm called from them
    included), or ``other`` (the timing shim, the interpreter's exit)."""
    frames = [m.group("file", "line") for m in map(_FRAME.match, stack.split(";")) if m]
    files = [f for f, _ in frames]
    if any(f.startswith("linncore/") for f in files):
        return None
    if any(f.startswith("<frozen importlib") for f in files):
        return "imports"
    for f, line in reversed(frames):
        if f.startswith(_PLOTTING):
            return "matplotlib"
        if f == script and int(line or 0) <= SHIM_LINES:
            return "other"
        if f in local:  # the script, emitter_simulator.py, ...
            return "notebook code"
    return "other"


def own_split(raw: str, script: str, local: set[str]) -> dict[str, float]:
    """Samples per part of the notebook's own time (:func:`classify`), from py-spy's raw
    output (one ``stack count`` line per distinct stack)."""
    split = dict.fromkeys(OWN_PARTS, 0.0)
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            part = classify(stack, script, local)
            if part is not None:
                split[part] += int(count)
    return split


def best_of(runs: list[Run]) -> Run:
    """The fastest successful run, else the first failure."""
    ok = [r for r in runs if r.status == "ok"]
    return min(ok, key=lambda r: r.wall) if ok else runs[0]


def fmt_epochs(epochs: list[int]) -> str:
    return "+".join(map(str, epochs)) if epochs else "-"


TARGET = 15.0  # seconds for the nine notebooks through linncore (issue 14)


def linncore_time(run: Run) -> tuple[float, float]:
    """(wall, CPU) seconds of a run inside linncore: its import and its timed calls."""
    return sum(run.phases.values()), sum(run.phase_cpu.values())


def report(
    names: list[str],
    counted: list[str],
    results: dict[str, dict[str, Run]],
    vendor: bool,
    profiled: dict[str, Run] | None = None,
) -> bool:
    """Print the tables; whether any run failed."""
    print(
        "\nlinncore path, seconds. 'wall' is the whole process, interpreter start included; "
        "'linncore' is its\nimport and every call of LinnModel and save_linn, 'own' the rest "
        "(the notebook's code, its imports,\nplotting, the interpreter's start). CPU is user "
        "+ system time of all threads (less sensitive than\nwall time to a busy machine); "
        "'fit CPU' is fit_model's, fit/epoch that per epoch"
    )
    cols = ["wall", "linncore", "own", "CPU", "linncore", "fit CPU", "own"]
    print(f"{'':<25}" + f"{'--- wall ---':^36}{'--- CPU ---':^48}")
    head = f"{'notebook':<16}{'epochs':>9}" + "".join(f"{c:>12}" for c in cols)
    head += f"{'share':>8}{'fit/epoch':>11}"
    if vendor:
        head += f"{'vendor wall':>12}{'v. epochs':>10}{'ratio':>8}"
    print(head)
    total = [0.0] * len(cols)
    vendor_total = 0.0
    failed = False
    rows: dict[str, list[float]] = {}
    for name in names:
        run = results[name]["linncore"]
        failed |= run.status != "ok"
        lib_wall, lib_cpu = linncore_time(run)
        fit = run.phase_cpu.get("fit_model", 0.0)
        values = [run.wall, lib_wall, run.wall - lib_wall, run.cpu, lib_cpu, fit, run.cpu - lib_cpu]
        rows[name] = values
        n_epochs = sum(run.epochs)
        per = f"{fit / n_epochs * 1e3:.1f} ms" if n_epochs else "-"
        share = f"{100 * lib_wall / run.wall:.0f}%" if run.wall else "-"
        row = f"{name:<16}{fmt_epochs(run.epochs):>9}" + "".join(f"{v:12.2f}" for v in values)
        row += f"{share:>8}{per:>11}"
        if vendor:
            v = results[name]["moku.nn"]
            failed |= v.status != "ok"
            row += f"{v.wall:12.1f}{fmt_epochs(v.epochs):>10}{v.wall / run.wall:7.1f}x"
        if run.status != "ok":
            row += f"  {run.status}"
        print(row)
        if name in counted:
            total = [t + v for t, v in zip(total, values)]
            if vendor:
                vendor_total += results[name]["moku.nn"].wall
    line = f"{'total (' + str(len(counted)) + ')':<16}{'':>9}"
    line += "".join(f"{t:12.2f}" for t in total)
    line += f"{100 * total[1] / total[0]:7.0f}%" if total[0] else f"{'-':>8}"
    if vendor:
        line += f"{'':>11}{vendor_total:12.1f}{'':>10}{vendor_total / total[0]:7.1f}x"
    print(line)

    print("\nlinncore calls, wall seconds")
    print(f"{'notebook':<16}" + "".join(f"{p:>18}" for p in PHASES))
    for name in names:
        run = results[name]["linncore"]
        print(f"{name:<16}" + "".join(f"{run.phases.get(p, 0.0):18.3f}" for p in PHASES))

    if profiled:
        print(
            "\nthe notebooks' own CPU seconds (the 'own' CPU column), split in the proportions "
            f"of py-spy's samples\n({SAMPLE_RATE} per second) of one more run of each under the "
            "profiler: 'imports' (numpy, matplotlib,\nscipy, tqdm...), 'matplotlib' (drawing), "
            "'notebook code' (its cells and the modules beside it,\nwith the NumPy/SciPy they "
            "call), 'other' (the timing shim, the interpreter's exit; the interpreter's\n"
            "start before any Python runs is not sampled and counts pro rata)"
        )
        print(f"{'notebook':<16}{'own CPU':>12}" + "".join(f"{p:>15}" for p in OWN_PARTS))
        sums = dict.fromkeys(OWN_PARTS, 0.0)
        for name in names:
            prof = profiled.get(name)
            own = rows[name][6]
            n = sum(prof.split.values()) if prof else 0
            if not prof or not n:
                print(f"{name:<16}{own:12.2f}  no samples")
                continue
            parts = {p: own * prof.split[p] / n for p in OWN_PARTS}
            if name in counted:
                sums = {p: sums[p] + parts[p] for p in OWN_PARTS}
            print(f"{name:<16}{own:12.2f}" + "".join(f"{parts[p]:15.2f}" for p in OWN_PARTS))
        print(
            f"{'total':<16}{sum(sums.values()):12.2f}"
            + "".join(f"{sums[p]:15.2f}" for p in OWN_PARTS)
        )

    print(
        f"\ntarget (issue 14): the nine tutorial notebooks <= {TARGET:g} s in all through linncore"
    )
    if total[0]:
        print(
            f"measured: {total[0]:.2f} s wall in all, of which linncore {total[1]:.2f} s "
            f"({100 * total[1] / total[0]:.0f}%); CPU {total[3]:.2f} s, of which linncore "
            f"{total[4]:.2f} s"
        )
        floor = "above the target by itself" if total[2] > TARGET else "within the target"
        print(
            f"floor: the notebooks' own code alone (everything but linncore) takes "
            f"{total[2]:.2f} s wall, {total[6]:.2f} s CPU: {floor}"
        )
        for name in counted:
            if rows[name][2] > TARGET:
                print(
                    f"  {name}'s own code alone takes {rows[name][2]:.2f} s wall "
                    f"({rows[name][6]:.2f} s CPU), more than the target for all nine"
                )
    return failed


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("path", nargs="?", help="moku-examples checkout (default: $MOKU_EXAMPLES)")
    ap.add_argument("--notebooks", help="comma-separated names (default: the nine tutorials)")
    ap.add_argument("--extra", action="store_true", help="also run Identity_NN (not counted)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per notebook; the best counts")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per notebook run")
    ap.add_argument("--python", default=sys.executable, help="interpreter of the linncore path")
    ap.add_argument("--vendor", action="store_true", help="also time the vendor's moku.nn path")
    ap.add_argument("--vendor-python", default=VENDOR_PYTHON, help="interpreter with moku.nn")
    ap.add_argument("--cells", action="store_true", help="print the slowest cells of each run")
    ap.add_argument("--keep", help="keep each run's folder (script, output.log) under this one")
    ap.add_argument("--json", help="write every figure to this file")
    ap.add_argument(
        "--profile",
        nargs="?",
        const="py-spy",
        metavar="PY_SPY",
        help="also split each notebook's own time by running it once more under py-spy "
        "(the executable, default py-spy on PATH; pip install py-spy, outside linncore)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        help="LINNCORE_NUM_THREADS of the runs (default: as set, else the CPUs available)",
    )
    args = ap.parse_args()
    global THREADS
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads: expected a positive number, got {args.threads}")
        THREADS = args.threads
    py_spy = None
    if args.profile:
        py_spy = shutil.which(args.profile)
        if py_spy is None:
            raise SystemExit(f"--profile: py-spy not found at {args.profile!r}")

    folder = notebook_folder(args.path)
    names = args.notebooks.split(",") if args.notebooks else list(NOTEBOOKS)
    if args.extra:
        names += [n for n in EXTRA if n not in names]
    for name in names:
        if not (folder / f"{name}.ipynb").is_file():
            raise SystemExit(f"--notebooks: {name}.ipynb is not in {folder}")
    paths = [("linncore", args.python)]
    if args.vendor:
        if not Path(args.vendor_python).exists():
            raise SystemExit(f"--vendor-python: {args.vendor_python!r} does not exist")
        paths.append(("moku.nn", args.vendor_python))
    keep_root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nbbench-"))
    keep_root.mkdir(parents=True, exist_ok=True)

    print(f"CPU: {cpu_name()}")
    print(f"notebooks: {folder}; best of {args.repeat} run(s); timeout {args.timeout:g} s")
    threads = THREADS if THREADS is not None else os.environ.get("LINNCORE_NUM_THREADS")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"linncore threads: {threads or f'default ({cpus})'}")
    results: dict[str, dict[str, Run]] = {}
    notes: dict[str, list[str]] = {}
    for library, python in paths:
        warm_up(python, library)
    for name in names:
        results[name] = {}
        for library, python in paths:
            script = to_script(folder / f"{name}.ipynb", library)
            if library == "linncore":
                notes[name] = script.notes
            runs = [
                run_script(script, folder, name, python, library, args.timeout, keep_root)
                for _ in range(args.repeat)
            ]
            results[name][library] = run = best_of(runs)
            print(
                f"  {name:<16} {library:<9} {run.wall:7.2f} s  epochs {fmt_epochs(run.epochs)}"
                f"  {run.status}",
                flush=True,
            )
            if run.tail:
                print("    " + run.tail.replace("\n", "\n    "))
            if args.cells and run.cells:
                slow = sorted(run.cells, key=lambda c: -c[1])[:4]
                print("    slowest cells: " + ", ".join(f"#{i} {s:.2f} s" for i, s in slow))

    profiled: dict[str, Run] = {}
    if py_spy:
        print(f"one more run of each under {py_spy} (--profile)", flush=True)
        for name in names:
            script = to_script(folder / f"{name}.ipynb", "linncore")
            run = run_script(
                script, folder, name, args.python, "linncore", args.timeout, keep_root, py_spy
            )
            profiled[name] = run
            if run.status != "ok":
                print(f"  {name}: {run.status}")

    counted = [n for n in names if n not in EXTRA or args.notebooks]
    failed = report(names, counted, results, args.vendor, profiled)
    changed = {n: v for n, v in notes.items() if v}
    if changed:
        print(
            "changes besides the import: "
            + "; ".join(f"{n}: {', '.join(v)}" for n, v in changed.items())
        )
    if args.keep:
        print(f"scripts and logs kept in {keep_root}")
    else:
        shutil.rmtree(keep_root, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "cpu": cpu_name(),
                    "runs": {
                        n: {lib: r.__dict__ for lib, r in per.items()} for n, per in results.items()
                    },
                    "profiled": {n: r.__dict__ for n, r in profiled.items()},
                    "notes": notes,
                },
                indent=1,
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
