"""``import linncore`` loads what the vendor path needs and the rest on first use."""

import ast
import subprocess
import sys
from pathlib import Path

import linncore

INIT = Path(linncore.__file__)
ON_USE = ("ablation", "curvature", "estimators", "evaluation", "hessian")


def test_the_vendor_import_leaves_the_other_subpackages_unloaded():
    code = (
        "import sys\n"
        "from linncore import LinnModel, save_linn\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[:2][-1] in {ON_USE!r}"
        " and m.startswith('linncore.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=INIT.parent.parent,
    )
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves_and_is_listed():
    for name in linncore.__all__:
        assert getattr(linncore, name) is not None, name
    assert set(linncore.__all__) <= set(dir(linncore))
    for package in ON_USE:
        assert getattr(linncore, package).__name__ == f"linncore.{package}"
    assert linncore.sweep is linncore.ablation.sweep
    assert linncore.LinnRegressor is linncore.estimators.LinnRegressor


def test_an_unknown_name_is_an_attribute_error():
    try:
        linncore.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("linncore.no_such_name resolved")


def test_the_names_on_use_are_those_the_type_checkers_see():
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )
    seen = {
        alias.asname or alias.name
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    lazy = {name for name, module in linncore._LAZY.items() if module != "." + name}
    assert seen == lazy | {"hessian"}
    assert lazy | {"hessian"} <= set(linncore.__all__)
