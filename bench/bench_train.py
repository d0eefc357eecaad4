"""Per-epoch training time: linncore against its peers on the networks its users train.

Run: python bench/bench_train.py [--epochs N] [--repeat R] [--cases a,b] [--skip-peers]
     [--threads T]

Every figure comes from this run on this machine, whose CPU is printed first. linncore's
compiled core runs at its thread count (printed; by default the CPUs the process may use) and,
when that is above one, once more on one thread, for the gain of the other cores. Peers run at
their best setting: PyTorch at its best thread count (every count from 1 to the cores is
tried), JAX with the whole epoch compiled (``jax.jit`` of a ``lax.scan`` over the batches:
forward, MSE, gradient, Keras's Adam, clipping; the compilation is timed apart), Keras
(the vendor's moku.nn path: clipped parameters and clipped layer outputs) after a warm-up epoch.

Cases (float32, batch 32, Adam 1e-3, outputs and parameters clipped to [-1, 1] as the
instrument requires; inputs and targets drawn once from a fixed seed):

  sine      the vendor's Simple_sine tutorial through LinnModel.fit_model with 10% validation:
            1 -> 32 relu -> 32 relu -> 32 tanh -> 1 linear, 629 points (566 for training)
  medium1   100 -> 80 -> 64 -> 64 -> 32 -> 1 (relu, tanh last), 5,040 samples
  medium2   4 -> 80 -> 80 -> 64 -> 64 -> 4 (relu, linear last), 2,250 samples
  tiny64    1 -> 16 tanh -> 16 tanh -> 1 linear in float64, 1,000 samples

GFLOP/s counts 6 x samples x multiply-adds per epoch (2 flops for each multiply-add of the
three products: forward, input gradient, weight gradient); the peak is NumPy's float32 GEMM
(1024 x 1024) on all cores, measured in the same run.

Targets (issue 14; printed, never enforced): sine whole fit <= 0.25 s, >= 300x Keras,
>= 40x PyTorch, >= 2x JAX; medium networks >= 40% of peak, >= 50x Keras, >= 20x PyTorch,
>= 2x JAX; tiny64 >= 20x the hand-written NumPy loop; the NumPy engine at least as fast as
the hand-written NumPy loop.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

try:
    import linncore
except ImportError:  # run from a source checkout with the core built in place
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import linncore
from linncore import Adam, Dense, LinnModel, Network, _backend

BATCH = 32


@dataclass
class Case:
    sizes: list[int]
    acts: list[str]
    n: int
    dtype: str
    through_linn_model: bool = False

    @property
    def macs(self) -> int:
        """Multiply-adds of one sample's forward pass."""
        return sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))


CASES = {
    "sine": Case([1, 32, 32, 32, 1], ["relu", "relu", "tanh", "linear"], 629, "float32", True),
    "medium1": Case(
        [100, 80, 64, 64, 32, 1], ["relu", "relu", "relu", "relu", "tanh"], 5040, "float32"
    ),
    "medium2": Case(
        [4, 80, 80, 64, 64, 4], ["relu", "relu", "relu", "relu", "linear"], 2250, "float32"
    ),
    "tiny64": Case([1, 16, 16, 1], ["tanh", "tanh", "linear"], 1000, "float64"),
}


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    flags = open("/proc/cpuinfo").read()
                    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
                    return f"{name}, {os.cpu_count()} logical CPUs, {simd}"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs"


def data(case: Case) -> tuple[np.ndarray, np.ndarray]:
    if case.sizes[0] == 1 and case.through_linn_model:  # the tutorial's cos(5x) on [0, 2 pi)
        x = np.arange(0, 2 * np.pi, 0.01)[:, None]
        y = np.cos(5 * x)
        x = 2 * (x - x.min()) / (x.max() - x.min()) - 1  # the tutorial's scaling, done once
        return x.astype(case.dtype), y.astype(case.dtype)
    r = np.random.default_rng(0)
    X = r.uniform(-1, 1, (case.n, case.sizes[0]))
    W = r.standard_normal((case.sizes[0], case.sizes[-1])) / np.sqrt(case.sizes[0])
    Y = np.tanh(np.sin(2 * X) @ W) * 0.8
    return X.astype(case.dtype), Y.astype(case.dtype)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def gemm_peak(repeat: int = 5) -> float:
    """float32 GFLOP/s of a 1024 x 1024 NumPy product on all cores."""
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    a @ a
    return 2 * 1024**3 / best_of(lambda: a @ a, repeat) / 1e9


# -- linncore --------------------------------------------------------------------------------
def linncore_time(case: Case, X, Y, epochs: int, repeat: int, engine: str) -> float:
    """Seconds per epoch (the whole fit divided by the epochs)."""
    with _backend.use(engine):
        if case.through_linn_model:

            def run():
                lm = LinnModel()
                lm.set_training_data(X, Y)
                lm.construct_model([(s, a) for s, a in zip(case.sizes[1:], case.acts)], seed=0)
                lm.fit_model(epochs=epochs, validation_split=0.1, verbose=0)
        else:

            def run():
                net = Network(
                    [
                        Dense((case.sizes[i], case.sizes[i + 1]), case.acts[i], seed=i)
                        for i in range(len(case.acts))
                    ],
                    clip=True,
                    dtype=case.dtype,
                )
                net.fit(
                    X, Y, epochs=epochs, batch_size=BATCH, optimizer=Adam(1e-3), verbose=0, seed=0
                )

        return best_of(run, repeat) / epochs


def training_rows(case: Case, X) -> int:
    return int(len(X) * 0.9) if case.through_linn_model else len(X)


# -- a hand-written NumPy loop ---------------------------------------------------------------
_F = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "linear": lambda z: z}
_DF = {
    "relu": lambda z, h: (z > 0).astype(z.dtype),
    "tanh": lambda z, h: 1 - h * h,
    "linear": lambda z, h: np.ones_like(z),
}


def numpy_loop_time(case: Case, X, Y, epochs: int, repeat: int) -> float:
    """A straightforward NumPy training loop: Adam, clipping, per-epoch shuffling."""
    X, Y = X[: training_rows(case, X)], Y[: training_rows(case, X)]
    dt = np.dtype(case.dtype)

    def run():
        r = np.random.default_rng(0)
        params = []
        for a, b in zip(case.sizes[:-1], case.sizes[1:]):
            lim = np.sqrt(6 / (a + b))
            params += [r.uniform(-lim, lim, (a, b)).astype(dt), np.zeros(b, dt)]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        t = 0
        for _ in range(epochs):
            order = r.permutation(len(X))
            for s in range(0, len(X), BATCH):
                idx = order[s : s + BATCH]
                a, cache = X[idx], []
                for i, act in enumerate(case.acts):
                    z = a @ params[2 * i] + params[2 * i + 1]
                    h = _F[act](z)
                    cache.append((a, z, h))
                    a = np.clip(h, -1, 1)
                d = 2 * (a - Y[idx]) / a.size
                grads = [None] * len(params)
                for i in range(len(case.acts) - 1, -1, -1):
                    a_in, z, h = cache[i]
                    d = d * (np.abs(h) <= 1) * _DF[case.acts[i]](z, h)
                    grads[2 * i], grads[2 * i + 1] = a_in.T @ d, d.sum(0)
                    d = d @ params[2 * i].T
                t += 1
                lr = 0.001 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
                for p, g, mm, vv in zip(params, grads, m, v):
                    mm += (g - mm) * 0.1
                    vv += (g * g - vv) * 0.001
                    p -= lr * mm / (np.sqrt(vv) + 1e-7)
                    np.clip(p, -1, 1, out=p)

    return best_of(run, repeat) / epochs


# -- PyTorch eager, at its best thread count --------------------------------------------------
def torch_time(case: Case, X, Y, epochs: int, repeat: int) -> tuple[float, int] | None:
    try:
        import torch
    except ImportError:
        return None
    X, Y = X[: training_rows(case, X)], Y[: training_rows(case, X)]
    act_mod = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "linear": torch.nn.Identity}
    tdt = torch.float64 if case.dtype == "float64" else torch.float32

    def run():
        torch.manual_seed(0)
        layers = []
        for i, a in enumerate(case.acts):
            layers += [
                torch.nn.Linear(case.sizes[i], case.sizes[i + 1], dtype=tdt),
                act_mod[a](),
                torch.nn.Hardtanh(),
            ]
        model = torch.nn.Sequential(*layers)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
        for _ in range(epochs):
            perm = torch.randperm(len(Xt))
            for s in range(0, len(Xt), BATCH):
                idx = perm[s : s + BATCH]
                opt.zero_grad()
                loss = torch.mean((model(Xt[idx]) - Yt[idx]) ** 2)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for p in model.parameters():
                        p.clamp_(-1, 1)

    best = None
    for threads in range(1, (os.cpu_count() or 1) + 1):
        torch.set_num_threads(threads)
        t = best_of(run, repeat) / epochs
        if best is None or t < best[0]:
            best = (t, threads)
    return best


# -- JAX: the whole epoch compiled --------------------------------------------------------------
def jax_time(case: Case, X, Y, epochs: int, repeat: int) -> tuple[float, float] | None:
    """(seconds per epoch, seconds to compile) of a jit-compiled lax.scan epoch."""
    try:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    if case.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    X, Y = X[: training_rows(case, X)], Y[: training_rows(case, X)]
    acts = {"relu": jax.nn.relu, "tanh": jnp.tanh, "linear": lambda z: z}
    n_full = len(X) // BATCH
    rest = len(X) - n_full * BATCH

    def forward(params, x):
        a = x
        for (W, b), act in zip(params, case.acts):
            a = jnp.clip(acts[act](a @ W + b), -1.0, 1.0)
        return a

    def loss(params, x, y):
        return jnp.mean((forward(params, x) - y) ** 2)

    grad = jax.grad(loss)

    def adam(state, g):
        params, m, v, t = state
        t = t + 1
        b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-7
        m = jax.tree_util.tree_map(lambda m_, g_: b1 * m_ + (1 - b1) * g_, m, g)
        v = jax.tree_util.tree_map(lambda v_, g_: b2 * v_ + (1 - b2) * g_ * g_, v, g)
        lr_t = lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
        params = jax.tree_util.tree_map(
            lambda p, m_, v_: jnp.clip(p - lr_t * m_ / (jnp.sqrt(v_) + eps), -1.0, 1.0),
            params,
            m,
            v,
        )
        return params, m, v, t

    def step(state, batch):
        xb, yb = batch
        return adam(state, grad(state[0], xb, yb)), None

    @jax.jit
    def epoch(state, key, X, Y):
        perm = jax.random.permutation(key, X.shape[0])
        Xs, Ys = X[perm], Y[perm]
        full = (
            Xs[: n_full * BATCH].reshape(n_full, BATCH, -1),
            Ys[: n_full * BATCH].reshape(n_full, BATCH, -1),
        )
        state, _ = jax.lax.scan(step, state, full)
        if rest:
            state, _ = step(state, (Xs[n_full * BATCH :], Ys[n_full * BATCH :]))
        return state

    r = np.random.default_rng(0)
    params = []
    for a, b in zip(case.sizes[:-1], case.sizes[1:]):
        lim = np.sqrt(6 / (a + b))
        params.append(
            (jnp.asarray(r.uniform(-lim, lim, (a, b)).astype(case.dtype)), jnp.zeros(b, case.dtype))
        )
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state0 = (params, zeros, zeros, jnp.asarray(0, case.dtype))
    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)
    key = jax.random.PRNGKey(0)
    t0 = time.perf_counter()
    jax.block_until_ready(epoch(state0, key, Xj, Yj))
    compile_s = time.perf_counter() - t0

    def run():
        state, k = state0, key
        for _ in range(epochs):
            k, sub = jax.random.split(k)
            state = epoch(state, sub, Xj, Yj)
        jax.block_until_ready(state)

    return best_of(run, repeat) / epochs, compile_s


# -- Keras (the vendor's path) ------------------------------------------------------------------
def keras_time(case: Case, X, Y, epochs: int, repeat: int) -> float | None:
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras
    except ImportError:
        return None
    X, Y = X[: training_rows(case, X)], Y[: training_rows(case, X)]

    class Clip(keras.constraints.Constraint):
        def __call__(self, w):
            return keras.ops.clip(w, -1.0, 1.0)

    class OutputClip(keras.layers.Layer):
        def call(self, t):
            return keras.ops.clip(t, -1.0, 1.0)

    layers = [keras.Input((case.sizes[0],), dtype=case.dtype)]
    for i, a in enumerate(case.acts):
        layers.append(
            keras.layers.Dense(
                case.sizes[i + 1],
                activation=a,
                kernel_constraint=Clip(),
                bias_constraint=Clip(),
                dtype=case.dtype,
            )
        )
        layers.append(OutputClip(dtype=case.dtype))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(X, Y, epochs=1, batch_size=BATCH, verbose=0)  # tracing and warm-up, not timed
    return (
        best_of(lambda: model.fit(X, Y, epochs=epochs, batch_size=BATCH, verbose=0), repeat)
        / epochs
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--epochs", type=int, default=200, help="epochs of the sine case")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--skip-peers", action="store_true", help="time linncore and the NumPy loop")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads of the compiled core (default: linncore's, the CPUs this process may use)",
    )
    args = ap.parse_args()
    if args.threads is not None:
        linncore.set_num_threads(args.threads)
    peak = gemm_peak()
    print(f"CPU: {cpu_name()}")
    print(
        f"linncore {linncore.__version__}, engine {linncore.backend()}, "
        f"{linncore.get_num_threads()} threads; float32 GEMM peak (NumPy, 1024^2, all cores): "
        f"{peak:.1f} GFLOP/s"
    )
    for name in args.cases.split(","):
        case = CASES[name]
        X, Y = data(case)
        epochs = args.epochs if name in ("sine", "tiny64") else max(5, args.epochs // 10)
        few = max(2, epochs // 10)
        rows_n = training_rows(case, X)
        flops = 6 * rows_n * case.macs
        print(
            f"\n== {name}: {' -> '.join(map(str, case.sizes))} ({case.dtype}), {rows_n} training "
            f"samples, batch {BATCH}, {epochs} epochs"
        )
        rows: dict[str, float | None] = {}
        threads = linncore.get_num_threads()
        notes = {"linncore (compiled core)": f"{threads} thread(s)"}
        # All threads and one thread taken in turn, the fastest of each kept, so a busy moment
        # of the machine does not decide the ratio.
        core = one = float("inf")
        for _ in range(args.repeat):
            core = min(core, linncore_time(case, X, Y, epochs, 1, "native"))
            if threads > 1:  # the same fit on one thread, for the gain of the other cores
                linncore.set_num_threads(1)
                try:
                    one = min(one, linncore_time(case, X, Y, epochs, 1, "native"))
                finally:
                    linncore.set_num_threads(threads)
        rows["linncore (compiled core)"] = core
        if threads > 1:
            rows["linncore (compiled, 1 thread)"] = one
            notes["linncore (compiled core)"] += f", {one / core:.2f}x one thread"
        rows["linncore (NumPy engine)"] = linncore_time(case, X, Y, few, 1, "numpy")
        rows["hand-written NumPy loop"] = numpy_loop_time(case, X, Y, few, 1)
        if not args.skip_peers:
            tt = torch_time(case, X, Y, few, 1)
            rows["PyTorch eager"] = tt[0] if tt else None
            if tt:
                notes["PyTorch eager"] = f"best at {tt[1]} thread(s)"
            jt = jax_time(case, X, Y, epochs, args.repeat)
            rows["JAX jit + lax.scan"] = jt[0] if jt else None
            if jt:
                notes["JAX jit + lax.scan"] = f"compiled in {jt[1]:.2f} s, not counted"
            rows["Keras"] = keras_time(case, X, Y, max(2, epochs // 20), 1)
        for label, t in rows.items():
            if t is None:
                print(f"  {label:<26} not installed")
                continue
            rate = flops / t / 1e9
            extra = f"  ({notes[label]})" if label in notes else ""
            print(
                f"  {label:<26} {t * 1e3:9.3f} ms/epoch  {rate:7.2f} GFLOP/s "
                f"{100 * rate / peak:5.1f}% of peak   linncore is {t / core:7.1f}x{extra}"
            )
        if name == "sine":
            print(f"  whole 1000-epoch tutorial fit: {core * 1000:.3f} s (target <= 0.25 s)")
        targets = {
            "sine": {"Keras": 300, "PyTorch eager": 40, "JAX jit + lax.scan": 2},
            "medium1": {"Keras": 50, "PyTorch eager": 20, "JAX jit + lax.scan": 2},
            "medium2": {"Keras": 50, "PyTorch eager": 20, "JAX jit + lax.scan": 2},
            "tiny64": {"hand-written NumPy loop": 20},
        }[name]
        for label, target in targets.items():
            t = rows.get(label)
            if t is not None:
                print(
                    f"  target >= {target}x {label}: {'met' if t / core >= target else 'NOT met'} "
                    f"({t / core:.1f}x)"
                )
        if name.startswith("medium"):
            share = 100 * flops / core / 1e9 / peak
            print(f"  target >= 40% of peak: {'met' if share >= 40 else 'NOT met'} ({share:.1f}%)")
        ne, nl = rows["linncore (NumPy engine)"], rows["hand-written NumPy loop"]
        print(
            f"  target NumPy engine <= hand-written loop: {'met' if ne <= nl else 'NOT met'} "
            f"({nl / ne:.2f}x the loop's speed)"
        )


if __name__ == "__main__":
    main()
