"""Every NumPy kernel under the name its compiled twin has in ``linncore._core``."""

from .dense import *  # noqa: F403
from .fixed import *  # noqa: F403
from .hessian import *  # noqa: F403
from .qat import *  # noqa: F403
from .train import *  # noqa: F403
