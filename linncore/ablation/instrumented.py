"""Instrumented training for ablation studies: plain SGD with a curvature-driven learning-rate
controller, logging every metric of ``ablation-metrics.md`` at every step.

The loop trains a :class:`~linncore.Network` from its current weights.  Each step, on the
step's mini-batch at the parameters ``theta_t`` before the update:

- loss (``half_mse`` or ``keras_mse``), ``rmse`` and the gradient ``g_t`` (through the
  quantizers of a precision config with the straight-through estimator, and quantized with
  the ``gradient`` formats when given);
- the controller: ``C_t = ||g_t - g_{t-1}|| / (||theta_t - theta_{t-1}|| + eps)`` (0 at the
  first step), ``E_t = (1 - rho) E_{t-1} + rho C_t`` (``E_0 = C_0``),
  ``alpha_would = min(1, chi / (eta (max(C_t, E_t) + eps)))`` (1 when the control is 0),
  ``alpha = alpha_would`` with the controller on, else 1, ``eta_eff = alpha eta``;
- the update ``u_t = -eta_eff g_t``, applied through the ``update`` formats, clipped to
  ``[-1, 1]`` when the network clips, and stored through the ``weight``/``bias`` formats; the
  actual update ``a_t = theta_{t+1} - theta_t`` and its geometry against ``u_t``;
- the Hessian quantities every ``hessian_every`` steps (NaN between): the closed form for one
  dense layer with a linear activation whose output clip is inactive on the batch, exact
  Hessian-vector products and Lanczos otherwise;
- after the update: ``theta_norm``, ``forward_gain_spectral``, ``weight_error_fro``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _backend
from .._util.codes import LOSSES, NEAR_RAIL, RAIL_NAMES
from .._util.kernel_args import QuantConfig
from .._util.progress import Progress, metric, per_unit, seconds
from .._util.validate import finite_float, flag, non_negative_int, positive_int, seed_value
from ..curvature.hessian import _spectral_gain, hessian_extremes
from ..engine.network import Network
from .fit_history import FitHistory

__all__ = ["train_instrumented", "METRICS", "RAIL_METRICS"]

METRICS = (
    "loss",
    "rmse",
    "theta_norm",
    "grad_norm",
    "raw_update_norm",
    "actual_update_norm",
    "update_cosine",
    "update_angle_rad",
    "update_radius_ratio",
    "curvature_proxy",
    "curvature_ema",
    "alpha",
    "alpha_would",
    "eta_eff",
    "forward_gain_spectral",
    "hessian_lambda_max",
    "hessian_lambda_min",
    "stability_margin_lambda_raw",
    "stability_margin_lambda_ctrl",
    "spectral_radius_raw",
    "spectral_radius_ctrl",
    "weight_error_fro",
    "finite",
    "diverged",
)
RAIL_METRICS = (
    "weight_saturation_fraction_max",
    "weight_near_rail_fraction_max",
    "gradient_saturation_fraction_max",
    "gradient_near_rail_fraction_max",
    "update_saturation_fraction_max",
    "update_underflow_fraction_max",
)
_LOSS_MODES = {"half_mse": "half_mse", "keras_mse": "mse", "mse": "mse"}


def _norm(v: np.ndarray) -> float:
    return float(np.sqrt(np.dot(v, v)))


def _end_to_end_kernel(net: Network) -> np.ndarray:
    W = net.layers[0].weight.astype(np.float64)
    for layer in net.layers[1:]:
        W = W @ layer.weight
    return W


def _epoch_text(log: dict[str, np.ndarray], start: int, stop: int):
    """The progress text of the steps ``start:stop`` of one epoch, built when shown."""

    def text() -> str:
        parts = [f"loss: {metric(float(np.mean(log['loss'][start:stop])))}"]
        lmax = log["hessian_lambda_max"][start:stop]
        if np.any(np.isfinite(lmax)):
            parts.append(f"hessian_lambda_max: {metric(float(np.nanmax(lmax)))}")
        return " - ".join(parts)

    return text


def train_instrumented(
    net: Network,
    X: Any,
    Y: Any,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 0.05,
    shuffle: bool = True,
    loss_mode: str = "half_mse",
    curvature_ema_rho: float = 0.05,
    chi: float = 1.5,
    eps: float = 1e-12,
    use_controller: bool = False,
    compute_analytic_hessian: bool = True,
    reference_A: Any = None,
    precision_dict: Any = None,
    seed: int | None = None,
    hessian_every: int = 1,
    divergence_factor: float = 1e6,
    near_rail: float = NEAR_RAIL,
    verbose: int = 0,
) -> FitHistory:
    """Train ``net`` from its current weights with plain SGD and the curvature controller,
    logging every metric per step.

    Parameters
    ----------
    net : Network
        Trained in place.  Its ``clip`` setting applies (outputs and parameters clipped to
        ``[-1, 1]``).
    X, Y : array_like
        Training data ``(n, n_in)`` and ``(n, n_out)``.
    epochs, batch_size : int
        The last batch of an epoch may be partial.
    learning_rate : float
        The base learning rate ``eta``.
    shuffle : bool
        Reshuffle every epoch (from ``seed``).
    loss_mode : {"half_mse", "keras_mse"}
        ``0.5 / B * sum ||r||^2`` or Keras's ``sum r^2 / (B m)``.
    curvature_ema_rho, chi, eps : float
        Controller constants (see the module docstring).
    use_controller : bool
        Apply ``alpha``; when False it is still computed and logged as ``alpha_would``.
    compute_analytic_hessian : bool
        Log the Hessian quantities (NaN when False).
    reference_A : array_like, optional
        Teacher matrix ``(n_in, n_out)`` for ``weight_error_fro`` (the end-to-end kernel of a
        network whose activations are all linear).
    precision_dict : PrecisionDict or dict, optional
        Fixed-point formats per ``(layer, field)``; None is the full-float path.
    seed : int, optional
        Seeds the shuffling, stochastic rounding and the Lanczos start vectors.
    hessian_every : int
        Compute the Hessian quantities every this many steps (NaN between).
    divergence_factor : float
        A loss above this times the first step's loss counts as divergence.
    near_rail : float
        Threshold of the near-rail fraction (fraction of the format's largest magnitude).
    verbose : int
        0 silent (default), 1 progress as ``Network.fit`` shows it (a bar on a terminal,
        lines at intervals elsewhere, always the last epoch's), 2 a line per epoch.  A line
        carries the time per epoch, the epoch's mean loss and, when computed, its largest
        ``hessian_lambda_max``; divergence is reported when it ends the run.

    Returns
    -------
    FitHistory
        One array per metric in :data:`METRICS` (plus :data:`RAIL_METRICS` when a precision
        config is given), ``epoch`` and ``step``.  On divergence the run stops, the history
        keeps every step up to and including the diverging one, and ``stop_reason`` says so.

    Examples
    --------
    >>> from linncore import Dense, Network, LinearTeacherDataset
    >>> ds = LinearTeacherDataset(256, 4, 2, seed=0)
    >>> net = Network([Dense((4, 2), has_bias=False, seed=0)], clip=False, dtype="float64")
    >>> h = train_instrumented(net, ds.X, ds.Y, epochs=2, learning_rate=0.1, reference_A=ds.A,
    ...                        seed=0)
    >>> len(h), bool(h.weight_error_fro[-1] < h.weight_error_fro[0])
    (16, True)
    """
    if not isinstance(net, Network):
        raise TypeError(f"net: expected a linncore.Network, got {type(net).__name__}")
    epochs = non_negative_int(epochs, "epochs")
    batch_size = positive_int(batch_size, "batch_size")
    eta = finite_float(learning_rate, "learning_rate", lo=0.0, lo_open=True)
    if not isinstance(loss_mode, str) or loss_mode not in _LOSS_MODES:
        raise ValueError(f"loss_mode: expected 'half_mse' or 'keras_mse', got {loss_mode!r}")
    loss = _LOSS_MODES[loss_mode]
    rho = finite_float(curvature_ema_rho, "curvature_ema_rho", lo=0.0, hi=1.0)
    chi = finite_float(chi, "chi", lo=0.0, lo_open=True)
    eps = finite_float(eps, "eps", lo=0.0)
    hessian_every = positive_int(hessian_every, "hessian_every")
    divergence_factor = finite_float(divergence_factor, "divergence_factor", lo=0.0, lo_open=True)
    near_rail = finite_float(near_rail, "near_rail", lo=0.0, hi=1.0)
    shuffle = flag(shuffle, "shuffle")
    use_controller = flag(use_controller, "use_controller")
    compute_analytic_hessian = flag(compute_analytic_hessian, "compute_analytic_hessian")
    verbose = non_negative_int(verbose, "verbose")
    x, y = net._samples(X, Y)
    A = None
    if reference_A is not None:
        A = np.asarray(reference_A, dtype=np.float64)
        if A.shape != (net.input_size, net.output_size):
            raise ValueError(
                f"reference_A: expected shape ({net.input_size}, {net.output_size}), got {A.shape}"
            )
        if any(layer.activation != "linear" for layer in net.layers):
            raise ValueError(
                "reference_A: weight_error_fro needs a network whose activations are all linear"
            )
    if net.has_batchnorm:
        if compute_analytic_hessian:
            raise ValueError(
                "compute_analytic_hessian: exact Hessians of networks with batch normalisation "
                "are not implemented; pass compute_analytic_hessian=False"
            )
        if precision_dict is not None:
            raise ValueError(
                "precision_dict: quantized training of networks with batch normalisation is not "
                "implemented"
            )
    seed = seed_value(seed)
    run_seed = int(np.random.SeedSequence(seed).generate_state(1)[0]) if seed is None else int(seed)
    quant = None
    if (
        precision_dict is not None
    ):  # (fmts, on) for the compiled QAT step; validated before training
        fmts, on = net._qat_arrays(precision_dict)
        quant = QuantConfig(fmts, on, seed=run_seed, near_rail=near_rail)
        from ..fixed.precision import ensure_precision_dict

        checked = ensure_precision_dict(precision_dict)
        precision_config = checked.to_dict() if checked is not None else None
    rng = np.random.default_rng(run_seed)
    kernels = _backend.kernels()
    n = x.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    keys = METRICS + (RAIL_METRICS if quant is not None else ())
    log = {k: np.full(total, np.nan) for k in keys}
    log["epoch"] = np.zeros(total, dtype=np.int64)
    log["step"] = np.arange(total, dtype=np.int64)
    theta = net.theta
    prev_theta = prev_grad = None
    ema = 0.0
    first_loss = None
    step = 0
    stop_reason = None
    display = Progress(epochs, verbose, "epoch") if verbose else None
    for epoch in range(epochs):
        first_step = step
        order = rng.permutation(n) if shuffle else np.arange(n)
        for s in range(0, n, batch_size):
            idx = order[s : s + batch_size]
            xb, yb = np.ascontiguousarray(x[idx]), np.ascontiguousarray(y[idx])
            theta_t = theta.copy()
            # -- loss and gradient at theta_t
            if quant is None:
                value, g, _ = kernels.net_loss_grad(
                    net.spec, theta, xb, yb, LOSSES[loss], False, net._state()
                )
            else:  # quantized forward, straight-through backward, quantized gradient: compiled
                rail = np.full(6, np.nan)
                status, value, g = kernels.qat_loss_grad(
                    net.spec, theta, xb, yb, loss=LOSSES[loss], quant=quant, step=step, rail=rail
                )
                if status:
                    g = np.full_like(theta, np.nan)
            m = net.output_size
            log["loss"][step] = value
            log["rmse"][step] = math.sqrt(
                max(value, 0.0) * (2.0 / m if loss == "half_mse" else 1.0)
            )
            log["grad_norm"][step] = _norm(g)
            # -- Hessian quantities at theta_t on the batch
            if compute_analytic_hessian and step % hessian_every == 0 and math.isfinite(value):
                lmin, lmax = hessian_extremes(net, xb, yb, loss, run_seed + step)
                log["hessian_lambda_min"][step] = lmin
                log["hessian_lambda_max"][step] = lmax
            # -- controller
            if prev_grad is None:
                c = 0.0
                ema = 0.0
            else:
                c = _norm(g - prev_grad) / (_norm(theta_t - prev_theta) + eps)
                ema = (1.0 - rho) * ema + rho * c
            control = max(c, ema)
            alpha_would = 1.0 if control == 0.0 else min(1.0, chi / (eta * (control + eps)))
            alpha = alpha_would if use_controller else 1.0
            eta_eff = alpha * eta
            log["curvature_proxy"][step], log["curvature_ema"][step] = c, ema
            log["alpha_would"][step], log["alpha"][step], log["eta_eff"][step] = (
                alpha_would,
                alpha,
                eta_eff,
            )
            # -- update
            g64 = g if g.dtype == np.float64 else g.astype(np.float64)
            u = (-eta_eff) * g64
            if quant is None:
                theta += u.astype(theta.dtype)
                if net.clip:
                    np.clip(theta, -1, 1, out=theta)
            else:  # update, clip and storage quantization: compiled
                kernels.qat_apply(
                    net.spec,
                    theta,
                    u.astype(theta.dtype),
                    quant=quant,
                    step=step,
                    clip_params=net.clip,
                    rail=rail,
                )
                for k, name in enumerate(RAIL_NAMES):
                    log[name][step] = rail[k]
            a = theta.astype(np.float64) - theta_t
            un, an = _norm(u), _norm(a)
            cos = float(np.dot(a, u) / (an * un)) if an > 0 and un > 0 else 0.0
            log["raw_update_norm"][step], log["actual_update_norm"][step] = un, an
            log["update_cosine"][step] = cos
            log["update_angle_rad"][step] = math.acos(min(1.0, max(-1.0, cos)))
            log["update_radius_ratio"][step] = an / (un + eps)
            # -- after the update
            log["theta_norm"][step] = _norm(theta.astype(np.float64))
            log["forward_gain_spectral"][step] = _spectral_gain(net)
            if A is not None:
                log["weight_error_fro"][step] = float(np.linalg.norm(_end_to_end_kernel(net) - A))
            lmin, lmax = log["hessian_lambda_min"][step], log["hessian_lambda_max"][step]
            if not math.isnan(lmax):
                log["stability_margin_lambda_raw"][step] = eta * lmax
                log["stability_margin_lambda_ctrl"][step] = eta_eff * lmax
                log["spectral_radius_raw"][step] = max(abs(1 - eta * lmin), abs(1 - eta * lmax))
                log["spectral_radius_ctrl"][step] = max(
                    abs(1 - eta_eff * lmin), abs(1 - eta_eff * lmax)
                )
            finite = math.isfinite(value) and bool(np.all(np.isfinite(theta)))
            if first_loss is None:
                first_loss = value
            diverged = (not math.isfinite(value)) or value > divergence_factor * first_loss
            log["finite"][step], log["diverged"][step] = float(finite), float(diverged)
            log["epoch"][step] = epoch
            prev_theta, prev_grad = theta_t, g64
            step += 1
            if diverged or not finite:
                stop_reason = f"diverged at step {step - 1} (epoch {epoch}): loss {value!r}" + (
                    "" if finite else ", parameters non-finite"
                )
                break
        if display is not None:
            display.update(epoch + 1, _epoch_text(log, first_step, step))
        if stop_reason:
            break
    if display is not None:
        done = step // steps_per_epoch if steps_per_epoch else 0
        display.close(
            ([f"stopped: {stop_reason}"] if stop_reason else [])
            + [
                f"trained {step} step(s) of {total} in {seconds(display.elapsed)}"
                + (f" ({per_unit(display.elapsed / done, 'epoch')})" if done else "")
            ]
        )
    history = FitHistory(
        {k: v[:step] for k, v in log.items()},
        seed=run_seed,
        stop_reason=stop_reason,
        config={
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": eta,
            "shuffle": shuffle,
            "loss_mode": loss_mode,
            "curvature_ema_rho": rho,
            "chi": chi,
            "eps": eps,
            "use_controller": bool(use_controller),
            "compute_analytic_hessian": bool(compute_analytic_hessian),
            "hessian_every": hessian_every,
            "divergence_factor": divergence_factor,
            "near_rail": near_rail,
            "precision": None if quant is None else precision_config,
            "network": repr(net),
        },
    )
    if stop_reason:
        import warnings

        from ..engine.network import TrainingDivergedWarning

        warnings.warn(
            f"train_instrumented: {stop_reason}; the history up to that step is kept",
            TrainingDivergedWarning,
            stacklevel=2,
        )
    return history
