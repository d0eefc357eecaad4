"""Per-epoch training time: linncore's compiled core and NumPy engine against a hand-written
NumPy loop and, when installed, PyTorch eager and Keras, on the same networks and data.

Run: python bench/bench_train.py [--epochs N] [--repeat R]

Networks:
  sine   the vendor's Simple_sine tutorial: 1 -> 32 relu -> 32 relu -> 32 tanh -> 1 linear,
         629 samples, batch 32, Adam, outputs and parameters clipped to [-1, 1]
  4x16x2 4 -> 16 tanh -> 16 tanh -> 2 linear on 10,000 samples, batch 32, Adam

Targets on the project's 2-core machine (printed, never enforced): the compiled core at
least 30x PyTorch eager and 100x Keras per epoch on sine, at least 10x the NumPy loop, and
the whole 1000-epoch tutorial fit in about a second.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

try:
    import linncore
except ImportError:  # run from a source checkout with the core built in place
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import linncore
from linncore import Adam, Dense, Network, _backend


def sine_data():
    x = np.arange(0, 2 * np.pi, 0.01)
    y = np.cos(5 * x)
    xs = 2 * (x - x.min()) / (x.max() - x.min()) - 1
    return xs[:, None].astype(np.float32), y[:, None].astype(np.float32)


def wide_data(n=10_000):
    r = np.random.default_rng(0)
    X = r.uniform(-1, 1, size=(n, 4)).astype(np.float32)
    Y = np.stack([np.sin(X[:, 0] + X[:, 1]), X[:, 2] * X[:, 3]], axis=1).astype(np.float32) * 0.8
    return X, Y


CASES = {
    "sine": ([1, 32, 32, 32, 1], ["relu", "relu", "tanh", "linear"], sine_data),
    "4x16x2": ([4, 16, 16, 2], ["tanh", "tanh", "linear"], wide_data),
}


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def linncore_epoch_time(sizes, acts, X, Y, epochs, repeat, engine):
    with _backend.use(engine):
        def run():
            net = Network([Dense((sizes[i], sizes[i + 1]), acts[i], seed=i) for i in range(len(acts))])
            net.fit(X, Y, epochs=epochs, batch_size=32, optimizer=Adam(), verbose=0, seed=0)
        return best_of(run, repeat) / epochs


def numpy_loop_epoch_time(sizes, acts, X, Y, epochs, repeat):
    """A straightforward hand-written NumPy training loop (float32, Adam, clipping)."""
    f = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "linear": lambda z: z}
    df = {"relu": lambda z, h: (z > 0).astype(z.dtype), "tanh": lambda z, h: 1 - h * h,
          "linear": lambda z, h: np.ones_like(z)}

    def run():
        r = np.random.default_rng(0)
        params = []
        for i in range(len(acts)):
            lim = np.sqrt(6 / (sizes[i] + sizes[i + 1]))
            params += [r.uniform(-lim, lim, (sizes[i], sizes[i + 1])).astype(np.float32),
                       np.zeros(sizes[i + 1], np.float32)]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        t = 0
        for _ in range(epochs):
            order = r.permutation(len(X))
            for s in range(0, len(X), 32):
                idx = order[s:s + 32]
                a, cache = X[idx], []
                for i, act in enumerate(acts):
                    z = a @ params[2 * i] + params[2 * i + 1]
                    h = f[act](z)
                    cache.append((a, z, h))
                    a = np.clip(h, -1, 1)
                d = 2 * (a - Y[idx]) / a.size
                grads = [None] * len(params)
                for i in range(len(acts) - 1, -1, -1):
                    a_in, z, h = cache[i]
                    d = d * (np.abs(h) <= 1) * df[acts[i]](z, h)
                    grads[2 * i], grads[2 * i + 1] = a_in.T @ d, d.sum(0)
                    d = d @ params[2 * i].T
                t += 1
                lr = 0.001 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
                for p, g, mm, vv in zip(params, grads, m, v):
                    mm += (g - mm) * 0.1
                    vv += (g * g - vv) * 0.001
                    p -= lr * mm / (np.sqrt(vv) + 1e-7)
                    np.clip(p, -1, 1, out=p)

    return best_of(run, repeat) / epochs


def torch_epoch_time(sizes, acts, X, Y, epochs, repeat):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    act_mod = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "linear": torch.nn.Identity}

    def run():
        torch.manual_seed(0)
        layers = []
        for i, a in enumerate(acts):
            layers += [torch.nn.Linear(sizes[i], sizes[i + 1]), act_mod[a](), torch.nn.Hardtanh()]
        model = torch.nn.Sequential(*layers)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
        for _ in range(epochs):
            perm = torch.randperm(len(Xt))
            for s in range(0, len(Xt), 32):
                idx = perm[s:s + 32]
                opt.zero_grad()
                loss = torch.mean((model(Xt[idx]) - Yt[idx]) ** 2)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for p in model.parameters():
                        p.clamp_(-1, 1)

    return best_of(run, repeat) / epochs


def keras_epoch_time(sizes, acts, X, Y, epochs, repeat):
    """Keras with the vendor's model: clipped parameters and clipped layer outputs."""
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras
    except ImportError:
        return None

    class Clip(keras.constraints.Constraint):
        def __call__(self, w):
            return keras.ops.clip(w, -1.0, 1.0)

    layers = [keras.Input((sizes[0],))]
    for i, a in enumerate(acts):
        layers.append(keras.layers.Dense(sizes[i + 1], activation=a, kernel_constraint=Clip(), bias_constraint=Clip()))
        layers.append(keras.layers.Lambda(lambda t: keras.ops.clip(t, -1.0, 1.0)))
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, Y, epochs=1, batch_size=32, verbose=0)  # tracing and warm-up, not timed
    return best_of(lambda: model.fit(X, Y, epochs=epochs, batch_size=32, verbose=0), repeat) / epochs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-peers", action="store_true", help="time linncore and the NumPy loop only")
    args = ap.parse_args()
    print(f"linncore {linncore.__version__}, engine in use: {linncore.backend()}, cores: {os.cpu_count()}")
    for name, (sizes, acts, make) in CASES.items():
        X, Y = make()
        epochs = args.epochs if name == "sine" else max(5, args.epochs // 20)
        print(f"\n== {name}: {' -> '.join(map(str, sizes))}, {len(X)} samples, batch 32, {epochs} epochs")
        rows = {"linncore (compiled core)": linncore_epoch_time(sizes, acts, X, Y, epochs, args.repeat, "native")}
        rows["linncore (NumPy engine)"] = linncore_epoch_time(sizes, acts, X, Y, max(2, epochs // 10), 1, "numpy")
        rows["hand-written NumPy loop"] = numpy_loop_epoch_time(sizes, acts, X, Y, max(2, epochs // 10), 1)
        if not args.skip_peers:
            rows["PyTorch eager"] = torch_epoch_time(sizes, acts, X, Y, max(2, epochs // 10), 1)
            rows["Keras"] = keras_epoch_time(sizes, acts, X, Y, max(2, epochs // 20), 1)
        core = rows["linncore (compiled core)"]
        for label, t in rows.items():
            if t is None:
                print(f"  {label:<26} not installed")
            else:
                print(f"  {label:<26} {t * 1e3:9.3f} ms/epoch   core is {t / core:8.1f}x faster")
        if name == "sine":
            print(f"  1000-epoch tutorial fit on the compiled core: about {core * 1000:.2f} s (target: about 1 s)")
            for label, target in (("PyTorch eager", 30), ("Keras", 100), ("hand-written NumPy loop", 10)):
                t = rows.get(label)
                if t is not None:
                    print(f"  target {target}x {label}: {'met' if t / core >= target else 'NOT met'} ({t / core:.1f}x)")


if __name__ == "__main__":
    main()
