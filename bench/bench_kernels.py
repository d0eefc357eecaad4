"""The kernels of bench/bench_kernels.c, this tree against another revision, in one run.

Run: python bench/bench_kernels.py [--against REV] [--rounds R] [--scale S]

Builds bench/bench_kernels.c twice with the build's options (setup.py): once on this tree's
csrc/ and once on the csrc/ of git revision REV (default HEAD, i.e. the last commit), then
runs the two programs in turn R times and prints, per kernel and shape, the best time of
each and their ratio.  Both programs take the same inputs; their checksum of every output
must match (the same bits), and the script says whether it does.  The CPU is named first.
Nothing here is a test: the figures are noisy on a shared machine, which is why each is the
best of many runs and the two builds alternate.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["-O3", "-std=c11", "-fno-math-errno", "-ffp-contract=off", "-pthread", "-Wno-psabi"]
LINE = re.compile(r"^(\s*)(.*?)\s+(\d+) ns")


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    name = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    simd = "AVX-512" if "avx512f" in text else "AVX2" if "avx2" in text else "SSE"
    return f"{name.group(1) if name else 'unknown CPU'}, {os.cpu_count()} logical CPUs, {simd}"


def build(csrc: Path, out: Path) -> None:
    cc = os.environ.get("CC", "cc")
    sources = sorted(str(p) for p in csrc.glob("*.c"))
    cmd = [cc, *FLAGS, f"-I{csrc}", str(ROOT / "bench" / "bench_kernels.c"), *sources]
    subprocess.run([*cmd, "-lm", "-o", str(out)], check=True)


def run(program: Path, scale: int) -> tuple[dict[str, float], str]:
    text = subprocess.run(
        [str(program), str(scale)], check=True, capture_output=True, text=True
    ).stdout
    times: dict[str, float] = {}
    section = layer = ""
    for line in text.splitlines():
        if line.startswith("=="):
            section = line[3:].split(",")[0]
        m = LINE.match(line)
        if m:
            label = m.group(2)
            if len(m.group(1)) <= 2:  # a layer's product, or a line of its own
                layer = label.split(":")[0] + ": " if label.startswith("layer") else ""
                times[f"{section} | {label}"] = float(m.group(3))
            else:  # the same layer's other kernels
                times[f"{section} | {layer}{label}"] = float(m.group(3))
    checksum = text.strip().splitlines()[-1].split()[-1]
    return times, checksum


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", default="HEAD", help="git revision to compare with")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scale", type=int, default=1, help="repetitions scale of each run")
    args = ap.parse_args()
    print(f"CPU: {cpu_name()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        archive = tmpdir / "rev.tar"
        with archive.open("wb") as fh:
            subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.against, "csrc"], check=True, stdout=fh
            )
        with tarfile.open(archive) as tar:
            tar.extractall(tmpdir / "rev", filter="data")
        programs = {"this tree": tmpdir / "new", args.against: tmpdir / "old"}
        build(ROOT / "csrc", programs["this tree"])
        build(tmpdir / "rev" / "csrc", programs[args.against])
        best: dict[str, dict[str, float]] = {label: {} for label in programs}
        sums: dict[str, set[str]] = {label: set() for label in programs}
        for _ in range(args.rounds):
            for label, program in programs.items():
                times, checksum = run(program, args.scale)
                sums[label].add(checksum)
                for key, t in times.items():
                    best[label][key] = min(t, best[label].get(key, t))
    new, old = best["this tree"], best[args.against]
    print(f"best of {args.rounds} runs each, ns (whole epochs: CPU time)")
    print(f"{'kernel':<78} {args.against[:12]:>12} {'this tree':>12} {'speed-up':>9}")
    for key in new:
        if key in old:
            print(f"{key:<78} {old[key]:12.0f} {new[key]:12.0f} {old[key] / new[key]:8.2f}x")
    same = sums["this tree"] == sums[args.against] and len(sums["this tree"]) == 1
    print(f"checksums: {sorted(sums[args.against])} vs {sorted(sums['this tree'])}: ", end="")
    print("the same bits" if same else "DIFFERENT BITS")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
