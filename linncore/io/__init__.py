"""Model files, bundles, JSON, and code and C-header export of quantized networks."""

from .export import export_c_header, export_codes
from .model_files import (
    ModelFile,
    ModelFileError,
    from_json,
    load_bundle,
    load_model,
    save_bundle,
    save_model,
    to_json,
)

__all__ = [
    "save_model",
    "load_model",
    "save_bundle",
    "load_bundle",
    "to_json",
    "from_json",
    "ModelFile",
    "ModelFileError",
    "export_codes",
    "export_c_header",
]
