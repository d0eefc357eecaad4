"""Every NumPy kernel under the name its compiled twin has in ``linncore._core``."""
from .dense import *  # noqa: F401,F403
from .fixed import *  # noqa: F401,F403
from .hessian import *  # noqa: F401,F403
from .qat import *  # noqa: F401,F403
