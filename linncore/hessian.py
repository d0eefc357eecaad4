"""Second-order analysis of dense networks: the public namespace of :mod:`linncore.curvature`.

Closed-form Hessians of a single dense layer, exact Hessian-vector products, the full Hessian,
its extreme eigenvalues and the stability metrics of an optimizer's update map.  The constants
``DENSE_MAX_PARAMS`` and ``LANCZOS_AUTO_TOL`` are where ``method="auto"`` changes method.
"""

from .curvature.hessian import DENSE_MAX_PARAMS as DENSE_MAX_PARAMS
from .curvature.hessian import LANCZOS_AUTO_TOL as LANCZOS_AUTO_TOL
from .curvature.hessian import (
    HessianOperator,
    forward_gain_spectral,
    full_hessian,
    hessian_extremes,
    hutchinson_trace,
    hvp,
    lambda_max,
    lambda_min,
    layer_blocks,
    single_dense_eigenvalues,
    single_dense_hessian,
    stability_metrics,
    top_eigenvalues,
)

__all__ = [
    "HessianOperator",
    "single_dense_hessian",
    "single_dense_eigenvalues",
    "hvp",
    "full_hessian",
    "layer_blocks",
    "lambda_max",
    "lambda_min",
    "hessian_extremes",
    "top_eigenvalues",
    "hutchinson_trace",
    "stability_metrics",
    "forward_gain_spectral",
]
