"""The NumPy engine: the executable specification of every compiled kernel, and the fallback.

``kernels`` gathers every kernel under the name and signature its compiled twin has in
``linncore._core``.
"""
