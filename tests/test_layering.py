"""The package's layers import one way: _util <- engine <- fixed/curvature <- io/vendor/evaluation
<- ablation <- cli.

Every import inside linncore, at module level or inside a function, is checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import linncore

PACKAGE = Path(linncore.__file__).resolve().parent

# Each layer and the layers it may import (the kernel layer is reachable from every product).
KERNELS = {"_util", "_backend", "_core", "_numpy", "_version"}
ALLOWED = {
    "_util": set(),
    "_version": set(),
    "_core": {"_util"},
    "_numpy": {"_util"},
    "_backend": {"_util", "_core", "_numpy"},
    "engine": KERNELS,
    "fixed": KERNELS | {"engine"},
    "curvature": KERNELS | {"engine"},
    "io": KERNELS | {"engine", "fixed", "curvature"},
    "vendor": KERNELS | {"engine", "fixed", "curvature", "io"},
    "evaluation": KERNELS | {"engine", "fixed", "curvature", "io"},
    "estimators": KERNELS | {"engine", "fixed", "curvature", "io", "vendor"},
    "ablation": KERNELS | {"engine", "fixed", "curvature", "io", "vendor", "evaluation"},
}


def _layer(parts: list[str]) -> str:
    return parts[0] if parts else "__init__"


def _imports(path: Path, root: Path = PACKAGE) -> list[tuple[int, list[str]]]:
    """(line, target parts under linncore) of every import of a linncore module in a file."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    package = parts[:-1]  # a package's __init__ and a plain module: relative to the folder
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "linncore":
                target = node.module.split(".")[1:]
            else:
                continue
            if not target or node.module is None:  # from . import a, b / from linncore import a
                found += [(node.lineno, target + [alias.name]) for alias in node.names]
            else:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "linncore":
                    found.append((node.lineno, alias.name.split(".")[1:]))
    return found


def _violations(root: Path) -> list[str]:
    wrong = []
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        layer = parts[0]
        if layer in ("__init__", "__main__", "cli", "hessian"):
            continue  # the public namespaces and the command line sit on top
        allowed = ALLOWED.get(layer)
        if allowed is None:
            wrong.append(f"{path.relative_to(root)}: a module outside the known layers")
            continue
        for line, target in _imports(path, root):
            to = _layer(target)
            if to == "__init__" or (to != layer and to not in allowed):
                wrong.append(
                    f"{path.relative_to(root)}:{line} ({layer}) imports linncore.{'.'.join(target)}"
                )
    return wrong


def test_imports_point_down_the_layers():
    wrong = _violations(PACKAGE)
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_an_upward_import_inside_a_function_is_found(tmp_path):
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "net.py").write_text(
        "from .._util import validate\n\ndef f():\n    from ..vendor import linn_model\n"
    )
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "m.py").write_text(
        "import linncore.engine.net\nfrom linncore import cli\n"
    )
    wrong = _violations(tmp_path)
    assert wrong == [
        "engine/net.py:4 (engine) imports linncore.vendor",
        "vendor/m.py:2 (vendor) imports linncore.cli",
    ]
