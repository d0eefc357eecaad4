"""Curvature: exact Hessian-vector products, full Hessians, spectra and stability metrics.

The public namespace is :mod:`linncore.hessian`.
"""
