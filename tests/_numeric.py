"""Numerical references shared by the tests."""

from __future__ import annotations

import numpy as np


def fd_gradient(net, X, Y, loss="mse", h=1e-4):
    """4th-order central differences of ``net.loss(X, Y, loss)`` with respect to theta."""
    theta0 = net.theta.copy()
    g = np.empty_like(theta0)
    for i in range(theta0.size):
        vals = []
        for k in (-2, -1, 1, 2):
            t = theta0.copy()
            t[i] += k * h
            net.set_theta(t)
            vals.append(net.loss(X, Y, loss))
        g[i] = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h)
    net.set_theta(theta0)
    return g
