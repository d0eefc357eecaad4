"""Every code shared by C and Python agrees in full.

The core's export, the headers and the Python side are compared.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from linncore._util import codes

CSRC = Path(__file__).resolve().parents[2] / "csrc"

# Header enum prefix -> (key of codes.constants(), how a C name maps to the Python key)
HEADER_ENUMS = {
    "LC_ACT_": ("ACTIVATIONS", str.lower),
    "LC_LOSS_": ("LOSSES", str.lower),
    "LC_OPT_": ("OPTIMIZERS", str.lower),
    "LC_QF_": ("QAT_FIELDS", str.lower),
}


def _header_enums() -> dict[str, int]:
    text = "\n".join(p.read_text() for p in sorted(CSRC.glob("*.h")))
    return {name: int(value) for name, value in re.findall(r"\b(LC_[A-Z0-9_]+)\s*=\s*(\d+)", text)}


def test_the_compiled_core_exports_exactly_the_python_codes(core):
    assert core.constants() == codes.constants()


def test_the_headers_carry_the_python_codes():
    enums = _header_enums()
    expected = codes.constants()
    for prefix, (key, to_python) in HEADER_ENUMS.items():
        found = {
            to_python(name[len(prefix) :]): v
            for name, v in enums.items()
            if name.startswith(prefix) and name[len(prefix) :] != "N"
        }
        assert found == expected[key], key
    status = {name[len("LC_ERR_") :]: v for name, v in enums.items() if name.startswith("LC_ERR_")}
    status["OK"] = enums["LC_OK"]
    assert status == expected["STATUS"]
    header = "\n".join(p.read_text() for p in sorted(CSRC.glob("*.h")))
    assert int(re.search(r"#define LC_N_ACTIVATIONS (\d+)", header).group(1)) == len(
        codes.ACTIVATIONS
    )
    assert int(re.search(r"#define LC_QF_N (\d+)", header).group(1)) == len(codes.QAT_FIELDS)
    assert int(re.search(r"#define LC_RAIL_N (\d+)", header).group(1)) == len(codes.RAIL_NAMES)
    assert (
        float(re.search(r"#define LC_LEAKY_SLOPE ([0-9.]+)", header).group(1)) == codes.LEAKY_SLOPE
    )


@pytest.mark.parametrize("key", sorted(codes.constants()))
def test_every_code_family_is_exported(core, key):
    assert key in core.constants()
