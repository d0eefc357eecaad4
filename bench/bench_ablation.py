"""Steps per second of linncore.train_instrumented against the seed's loop in TensorFlow.

Two problems, float64, batch 32, half_mse, controller on, Hessian quantities every step:

1. one-layer teacher: 4 -> 2 linear, no bias (Y = X A); the Hessian is closed form
   (lambda(X_b^T X_b / B)).
2. a 4 -> 16 tanh -> 16 tanh -> 2 linear network (386 parameters); the Hessian extremes come
   from exact Hessian-vector products.

linncore runs the float path and a precision config (fixed-point weights, gradients and
stochastically rounded updates).  The baseline, when TensorFlow is importable, is the
seed's style of loop written eagerly (no tf.function, as the seed runs it): a GradientTape
per step, gradients flattened to one vector, norms, the curvature controller, assign_sub,
the update geometry, the spectral forward gain, and for the Hessian: numpy eigvalsh of
X_b^T X_b / B for the one-layer case, power iteration on double-GradientTape HVPs
(POWER_ITERS products, lambda_max only) for the deeper one.  With the precision config the
TensorFlow loop quantizes as the seed does: kernels through fake quantization with
straight-through gradients in the forward pass, gradients quantized, updates stochastically
rounded, stored kernels quantized, and the rail fractions of weights, gradients and updates
logged.  The TensorFlow loop still does less than linncore (no lambda_min), so the ratios
favour TensorFlow.

Prints steps/s, the ratio and whether the 50x target is met; never fails.
Run: python bench/bench_ablation.py   (TensorFlow lives in /work/venv-tf here)
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from linncore import Dense, LinearTeacherDataset, Network, train_instrumented

TARGET = 50.0
POWER_ITERS = 20
BATCH = 32
PRECISION = {
    "default": {
        "weight": "fixed<16,1>",
        "gradient": "fixed<16,4>",
        "update": "fixed<16,1,STOCH,SAT>",
    }
}


def one_layer(seed: int = 0) -> Network:
    return Network([Dense((4, 2), has_bias=False, seed=seed)], clip=False, dtype="float64")


def deep(seed: int = 0) -> Network:
    return Network(
        [
            Dense((4, 16), "tanh", seed=seed),
            Dense((16, 16), "tanh", seed=seed + 1),
            Dense((16, 2), seed=seed + 2),
        ],
        clip=False,
        dtype="float64",
    )


def linncore_rate(make, ds, precision, min_time: float = 1.0) -> float:
    """Best steps/s over a few runs of at least ``min_time`` seconds in all."""
    linear = len(make().layers) == 1
    kw = dict(
        batch_size=BATCH,
        learning_rate=0.05,
        use_controller=True,
        precision_dict=precision,
        seed=0,
        reference_A=ds.A if linear else None,
    )
    train_instrumented(make(), ds.X, ds.Y, epochs=1, **kw)  # warm-up
    best, spent = 0.0, 0.0
    epochs = 1
    while spent < min_time:
        net = make()
        t = time.perf_counter()
        h = train_instrumented(net, ds.X, ds.Y, epochs=epochs, **kw)
        dt = time.perf_counter() - t
        spent += dt
        best = max(best, len(h) / dt)
        epochs = min(epochs * 2, 64)
    return best


# -- the seed's loop, eager TensorFlow ----------------------------------------------------------
def tf_quantizers(tf):
    """Fake quantization to fixed<W,I> in TensorFlow: (round to nearest even | stochastic),
    saturation, and the straight-through estimator."""

    def q(x, bits, int_bits, stochastic=False, rng=None):
        scale = 2.0 ** (bits - int_bits)
        lo, hi = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
        y = x * scale
        if stochastic:
            y = tf.floor(y + tf.constant(rng.random(x.shape)))
        else:
            y = tf.round(y)  # ties to even
        return tf.clip_by_value(y, lo, hi) / scale

    def ste(x, bits, int_bits):
        return x + tf.stop_gradient(q(x, bits, int_bits) - x)

    def rails(x, bits, int_bits):
        top = (2.0 ** (bits - 1)) / 2.0 ** (bits - int_bits)
        sat = float(tf.reduce_mean(tf.cast(tf.abs(x) > top, tf.float64)))
        near = float(tf.reduce_mean(tf.cast(tf.abs(q(x, bits, int_bits)) >= 0.9 * top, tf.float64)))
        return sat, near

    return q, ste, rails


def tf_rate(tf, make, ds, steps: int, quantized: bool = False) -> float:
    net = make()
    q, ste, rails = tf_quantizers(tf)
    qrng = np.random.default_rng(1)
    linear = len(net.layers) == 1
    acts = {"tanh": tf.tanh, "linear": lambda z: z}
    variables, layers = [], []
    for layer in net.layers:
        W = tf.Variable(layer.weight.astype(np.float64))
        b = tf.Variable(layer.bias.astype(np.float64)) if layer.has_bias else None
        variables += [W] + ([b] if b is not None else [])
        layers.append((W, b, acts[layer.activation]))
    A = tf.constant(ds.A) if linear else None

    def forward(x):
        a = x
        for W, b, act in layers:
            z = tf.matmul(a, ste(W, 16, 1) if quantized else W)
            if b is not None:
                z = z + b
            a = act(z)
        return a

    def half_mse(x, y):
        r = forward(x) - y
        return 0.5 * tf.reduce_sum(r * r) / tf.cast(tf.shape(x)[0], tf.float64)

    def flatten(ts):
        return tf.concat([tf.reshape(t, [-1]) for t in ts], axis=0)

    def hvp(x, y, vs):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                loss = half_mse(x, y)
            grads = inner.gradient(loss, variables)
            dot = tf.add_n([tf.reduce_sum(g * v) for g, v in zip(grads, vs)])
        return outer.gradient(dot, variables)

    def power_lambda_max(x, y, seed):
        rng = np.random.default_rng(seed)
        vs = [tf.constant(rng.standard_normal(v.shape)) for v in variables]
        lam = 0.0
        for _ in range(POWER_ITERS):
            nrm = tf.sqrt(tf.add_n([tf.reduce_sum(v * v) for v in vs]))
            vs = [v / nrm for v in vs]
            hv = hvp(x, y, vs)
            lam = float(tf.add_n([tf.reduce_sum(a * b) for a, b in zip(vs, hv)]))
            vs = hv
        return lam

    rng = np.random.default_rng(0)
    n = ds.X.shape[0]
    X, Y = tf.constant(ds.X), tf.constant(ds.Y)
    eta, rho, chi, eps = 0.05, 0.05, 1.5, 1e-12
    prev_theta = prev_grad = None
    ema = 0.0
    log = {
        k: []
        for k in (
            "loss",
            "grad_norm",
            "curvature_proxy",
            "curvature_ema",
            "alpha",
            "eta_eff",
            "raw_update_norm",
            "actual_update_norm",
            "update_cosine",
            "theta_norm",
            "forward_gain_spectral",
            "hessian_lambda_max",
            "stability_margin_lambda_ctrl",
            "weight_error_fro",
        )
    }
    done, t0 = 0, None
    while done < steps + 3:
        order = rng.permutation(n)
        for s in range(0, n - BATCH + 1, BATCH):
            if done == 3:  # after a warm-up of three steps
                t0 = time.perf_counter()
            if done >= steps + 3:
                break
            idx = order[s : s + BATCH]
            x, y = tf.gather(X, idx), tf.gather(Y, idx)
            theta_before = flatten(variables)
            with tf.GradientTape() as tape:
                loss = half_mse(x, y)
            grads = tape.gradient(loss, variables)
            if quantized:
                rail_log = [rails(gr, 16, 4) for gr in grads]
                grads = [q(gr, 16, 4) for gr in grads]
            g = flatten(grads)
            if prev_grad is None:
                c = ema = 0.0
            else:
                c = float(tf.norm(g - prev_grad) / (tf.norm(theta_before - prev_theta) + eps))
                ema = (1 - rho) * ema + rho * c
            control = max(c, ema)
            alpha = 1.0 if control == 0 else min(1.0, chi / (eta * (control + eps)))
            eta_eff = alpha * eta
            for v, gr in zip(variables, grads):
                if quantized:
                    delta = q(-eta_eff * gr, 16, 1, stochastic=True, rng=qrng)
                    rail_log.append(
                        (float(tf.reduce_mean(tf.cast((delta == 0) & (gr != 0), tf.float64))), 0.0)
                    )
                    v.assign_add(delta)
                    rail_log.append(rails(v, 16, 1))
                    v.assign(q(v, 16, 1))
                else:
                    v.assign_sub(eta_eff * gr)
            theta_after = flatten(variables)
            u = -eta_eff * g
            a = theta_after - theta_before
            un, an = float(tf.norm(u)), float(tf.norm(a))
            cos = float(tf.reduce_sum(a * u)) / (an * un) if an > 0 and un > 0 else 0.0
            gain = 1.0
            for W, _, _ in layers:
                gain *= float(tf.reduce_max(tf.linalg.svd(W, compute_uv=False)))
            if linear:
                xb = x.numpy()
                lam = float(np.linalg.eigvalsh(xb.T @ xb / BATCH)[-1])
                err = float(tf.norm(layers[0][0] - A))
            else:
                lam = power_lambda_max(x, y, done)
                err = math.nan
            for k, val in zip(
                log,
                (
                    float(loss),
                    float(tf.norm(g)),
                    c,
                    ema,
                    alpha,
                    eta_eff,
                    un,
                    an,
                    cos,
                    float(tf.norm(theta_after)),
                    gain,
                    lam,
                    eta_eff * lam,
                    err,
                ),
            ):
                log[k].append(val)
            prev_theta, prev_grad = theta_before, g
            done += 1
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ds = LinearTeacherDataset(1024, 4, 2, seed=0)
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except ImportError:
        tf = None
        print("TensorFlow is not importable: linncore figures only")
    print(
        f"{'problem':<34}{'linncore float':>16}{'linncore quant':>16}"
        f"{'TF float':>12}{'TF quant':>12}"
        f"{'ratio float':>13}{'ratio quant':>13}"
    )
    for label, make, tf_steps in (
        ("one-layer teacher 4 -> 2 (closed)", one_layer, 300),
        ("4 -> 16 -> 16 -> 2 tanh (HVP)", deep, 30),
    ):
        fl = linncore_rate(make, ds, None)
        qu = linncore_rate(make, ds, PRECISION)
        line = f"{label:<34}{fl:>12.0f} /s{qu:>12.0f} /s"
        if tf is not None:
            ref = tf_rate(tf, make, ds, tf_steps)
            ref_q = tf_rate(tf, make, ds, tf_steps, quantized=True)
            rf, rq = fl / ref, qu / ref_q
            line += (
                f"{ref:>8.1f} /s{ref_q:>8.1f} /s{rf:>12.1f}x{rq:>12.1f}x   "
                f"{'met' if min(rf, rq) >= TARGET else 'NOT met'}"
            )
        print(line, flush=True)
    print(
        f"target: linncore at least {TARGET:.0f}x the TensorFlow loop's steps/s "
        f"(TF: eager GradientTape, one intra-op thread, {POWER_ITERS} power-iteration HVPs per "
        "deep step)"
    )


if __name__ == "__main__":
    main()
