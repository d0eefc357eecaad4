"""The command's own options and help: --version, and help text printed as written."""

from __future__ import annotations

import linncore
from linncore.cli import main


def test_version_option_prints_the_package_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"linncore {linncore.__version__}"


def test_demo_help_prints_a_single_percent_sign(capsys):
    assert main(["demo", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "10% validation" in out and "%%" not in out
