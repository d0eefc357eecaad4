"""The thread machinery of csrc/lc_parallel.c, compiled on its own with ThreadSanitizer.

Parts are claimed with a compare-and-swap on one word and helpers are detached, so the
protocol is checked directly: thousands of parallel loops and team generations with
changing part counts, each part's result compared with a serial run, under TSan's race
detector.  Skipped when there is no C compiler or it cannot build with -fsanitize=thread."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

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
