"""The thread machinery of csrc/lc_parallel.c, compiled on its own with ThreadSanitizer, and a
child forked while a team's helpers linger.

Parts are claimed with a compare-and-swap on one word and helpers are detached, so the
protocol is checked directly: thousands of parallel loops and team generations with
changing part counts, each part's result compared with a serial run, under TSan's race
detector.  Skipped when there is no C compiler or it cannot build with -fsanitize=thread."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

CSRC = Path(__file__).resolve().parents[2] / "csrc"

HARNESS = r"""
#include <stdio.h>
#include "lc_parallel.h"

typedef struct { double out[64]; int64_t len; } job;

static void work(void *arg, int64_t part)
{
    job *j = (job *)arg;
    double s = 0;
    for (int64_t i = 0; i < j->len; i++) s += (double)(i % 7) * (double)(part + 1);
    j->out[part] = s;
}

static int same(const job *a, int64_t n_parts)
{
    job b = {{0}, a->len};
    for (int64_t p = 0; p < n_parts; p++) work(&b, p);
    for (int64_t p = 0; p < 64; p++)
        if (a->out[p] != b.out[p]) return 0;
    return 1;
}

int main(void)
{
    lc_set_num_threads(3);
    for (int it = 0; it < 1500; it++) { /* a fresh team per loop */
        job j = {{0}, 500 + it % 50};
        const int64_t n = 1 + it % LC_MAX_PARTS;
        lc_parallel_for(n, work, &j);
        if (!same(&j, n)) { puts("loop mismatch"); return 1; }
    }
    lc_team *team = lc_team_start(3); /* one team, many generations */
    for (int it = 0; it < 30000; it++) { /* short parts: generations follow each other closely */
        job j = {{0}, 5 + it % 13};
        const int64_t n = 1 + it % LC_MAX_PARTS;
        lc_team_run(team, n, work, &j);
        if (!same(&j, n)) { puts("team mismatch"); return 1; }
    }
    for (int it = 0; it < 3000; it++) { /* more parts than one generation's claimed set */
        job j = {{0}, 5 + it % 13};
        const int64_t n = 1 + it % 64;
        lc_team_run(team, n, work, &j);
        if (!same(&j, n)) { puts("long run mismatch"); return 1; }
    }
    lc_team_end(team);
    puts("ok");
    return 0;
}
"""


def test_parallel_loops_and_teams_are_race_free_under_thread_sanitizer(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler on PATH")
    if not (CSRC / "lc_parallel.c").exists():
        pytest.skip("csrc/ is not beside the tests (installed package without sources)")
    (tmp_path / "stress.c").write_text(HARNESS)
    exe = tmp_path / "stress"
    build = subprocess.run(
        [
            cc,
            "-std=c99",
            "-O1",
            "-g",
            "-fsanitize=thread",
            "-pthread",
            f"-I{CSRC}",
            str(tmp_path / "stress.c"),
            str(CSRC / "lc_parallel.c"),
            "-o",
            str(exe),
        ],
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        pytest.skip(f"cannot build with -fsanitize=thread: {build.stderr.strip()[:200]}")
    run = subprocess.run(
        [str(exe)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"TSAN_OPTIONS": "halt_on_error=1 exitcode=66"},
    )
    if run.returncode != 0 and "FATAL: ThreadSanitizer" in run.stderr:
        pytest.skip(f"ThreadSanitizer cannot run here: {run.stderr.strip()[:200]}")
    assert "WARNING: ThreadSanitizer" not in run.stderr, run.stderr[:4000]
    assert run.returncode == 0 and run.stdout.strip() == "ok", (
        run.returncode,
        run.stdout,
        run.stderr[:2000],
    )


def _fork_fit(lc, X, Y, threads):
    """The weights after five epochs at threads, of a network whose steps run in parts (32 rows
    times 10,432 parameters: past LC_TRAIN_PAR_MIN_WORK)."""
    lc.set_num_threads(threads)
    net = lc.Network(
        [lc.Dense((16, 128), "relu", seed=0), lc.Dense((128, 64), "tanh", seed=1)],
        dtype="float32",
    )
    net.fit(X, Y, epochs=5, batch_size=32, verbose=0, seed=0)
    return np.concatenate([w.ravel() for w in net.get_weights()])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_helpers_linger_runs_its_own_threads():
    """A team's helpers outlive its kernel call for about a millisecond, waiting for the next
    call.  A child forked in that time has none of them: it must start its own (exit code 3
    when the core started no helper while it trained) and give the same bits (2 when not),
    not take the parked team whose helpers did not come with it.  The fork follows the fit
    at once, so it usually finds the team parked (then only lc_pool_forget makes the child
    start a helper); when the parent's helper retired first, the test still checks the
    child's bits and helper.  The core counts the helpers it starts: a watcher thread that
    looked for them in /proc missed them on a busy machine, where it got no core while the
    fit ran."""
    import linncore as lc

    if lc._backend.backend() != "native":
        pytest.skip("the compiled core is not built")
    from linncore._core import _kernels as kernels

    before = lc.get_num_threads()
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (512, 16)).astype(np.float32)
    Y = np.tanh(X @ rng.standard_normal((16, 64))).astype(np.float32)
    try:
        expected = _fork_fit(lc, X, Y, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            _fork_fit(lc, X, Y, 2)  # its helpers linger ...
            pid = os.fork()  # ... as the child is made
        if pid == 0:  # the child: never returns into pytest
            code = 1
            try:
                started = kernels.helpers_started()
                same = np.array_equal(_fork_fit(lc, X, Y, 2), expected)
                helped = kernels.helpers_started() > started
                code = 0 if same and helped else (2 if not same else 3)
            finally:
                os._exit(code)
        deadline = time.monotonic() + 120
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("the forked child hung in its parallel step")
            time.sleep(0.01)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    finally:
        lc.set_num_threads(before)
