# cython: language_level=3
"""linncore._core._kernels: thin wrappers over the C kernels in csrc/.

Each wrapper checks dtype, shape and contiguity, releases the GIL and calls one ``lc_*``
function; none does arithmetic of its own.  Every function here has a twin of the same name
and signature in ``linncore._numpy`` (the executable specification), and the tests compare
the two.  The wrappers for each kernel family live in an included ``*.pxi`` file.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t

cnp.import_array()

include "common.pxi"
include "dense.pxi"
include "fixed.pxi"
include "hessian.pxi"
include "qat.pxi"
