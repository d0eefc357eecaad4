"""Seeded mutations of JSON documents, for fuzzing loaders of untrusted files.

``_fuzz_mutations(doc_text, rng)`` returns the bytes of a mutated copy of ``doc_text``: one to
three mutations, each picked at random from byte-level damage (truncation, flipped bytes) and
structural damage (a deleted key, a value of another type, huge or non-finite numbers, deep
nesting, giant arrays or strings, duplicated keys, resized base64 data).  The same text and
generator state give the same result, so a failing case is reproduced from its seed.  Any
loader of JSON documents (model files, ``.linn`` documents) can reuse it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

_POOL: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2,
    7,
    2**31,
    2**63,
    -(2**63) - 1,
    10**40,
    0.5,
    -0.0,
    1e-320,
    1.7976931348623157e308,
    "",
    "x",
    "float32",
    "float64",
    "relu",
    "tanh",
    "dense0",
    "linncore.model",
    "linncore.bundle",
    "AAAA",
    [],
    {},
    [1, 2],
    [[1]],
    {"a": 1},
    "A" * 1000,
]
_RAW_TOKENS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "1" * 5000,
    "1e-999",
    "0.1e1",
    "-0",
    "00",
    "true",
    "null",
    '"\\ud800"',
    '"\\u0000"',
]


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:64]):
            out += _paths(v, prefix + (i,))
    return out


def _get(node: Any, path: tuple) -> Any:
    for p in path:
        node = node[p]
    return node


def _structural(text: str, rng: np.random.Generator) -> str | None:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    paths = _paths(doc)
    path = paths[int(rng.integers(len(paths)))]
    marker = "\u0000FUZZ\u0000"
    raw: str | None = None
    op = int(rng.integers(9))
    if op == 0 and path:  # delete a key or an item
        parent = _get(doc, path[:-1])
        del parent[path[-1]]
    else:
        if op == 1:
            value: Any = _POOL[int(rng.integers(len(_POOL)))]
        elif op == 2:
            value, raw = marker, _RAW_TOKENS[int(rng.integers(len(_RAW_TOKENS)))]
        elif op == 3:
            depth = int(rng.choice([5, 40, 900, 5000, 50_000]))
            value, raw = (
                marker,
                "[" * depth + "]" * depth
                if rng.random() < 0.5
                else '{"a":' * depth + "1" + "}" * depth,
            )
        elif op == 4:
            n = int(rng.choice([100, 10_000, 200_000]))
            value = [0] * n if rng.random() < 0.5 else "A" * n
        elif op == 5:
            old = _get(doc, path)
            value = (
                old[: int(rng.integers(len(old) + 1))] + "A" * int(rng.integers(0, 9))
                if isinstance(old, str)
                else old
            )
        elif op == 6:
            value = [int(rng.choice([-1, 0, 1, 3, 5, 2**20, 2**40]))] * int(rng.integers(0, 4))
        elif op == 7:
            value = float(rng.choice([1e308, -1e308, 1e-308, 3.5, -2.0])) * float(
                rng.choice([1, 10])
            )
        else:
            value = _get(doc, path)
            if isinstance(value, dict):
                value = dict(value, **{"extra_" + str(int(rng.integers(100))): 1})
        if path:
            _get(doc, path[:-1])[path[-1]] = value
        else:
            doc = value
    try:
        out = json.dumps(doc, allow_nan=True)
    except (ValueError, RecursionError):
        return None
    if raw is not None:
        out = out.replace(json.dumps(marker), raw, 1)
    return out


def _fuzz_mutations(doc_text: str, rng: np.random.Generator) -> bytes:
    """A mutated copy of ``doc_text`` as bytes (see the module docstring)."""
    text = doc_text
    data: bytes | None = None
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(5))
        if data is None and kind >= 2:
            mutated = _structural(text, rng)
            if mutated is not None:
                text = mutated
                continue
        data = text.encode("utf-8", "surrogatepass") if data is None else data
        if kind == 0 or not data:
            data = data[: int(rng.integers(len(data) + 1))]
        elif kind == 1:
            buf = bytearray(data)
            for _ in range(int(rng.integers(1, 9))):
                buf[int(rng.integers(len(buf)))] = int(rng.integers(256))
            data = bytes(buf)
        else:  # duplicate a key, or insert a stray byte sequence
            pos = data.find(b"{")
            if pos >= 0 and rng.random() < 0.5:
                data = data[: pos + 1] + b'"format_version": 1, ' + data[pos + 1 :]
            else:
                at = int(rng.integers(len(data) + 1))
                data = (
                    data[:at]
                    + bytes(rng.integers(0, 256, size=int(rng.integers(1, 5))).tolist())
                    + data[at:]
                )
    out = data if data is not None else text.encode("utf-8", "surrogatepass")
    if out == doc_text.encode(
        "utf-8", "surrogatepass"
    ):  # a mutation that happened to change nothing
        out = out[:-1]
    return out


def fuzz_loader(
    load: Callable[[bytes], Any],
    texts: list[str],
    n: int,
    seed: int,
    clean_error: type[Exception],
    check: Callable[[Any], None],
) -> Counter:
    """Feed ``n`` seeded mutations of ``texts`` (taken in turn) to ``load``.

    Each case must raise ``clean_error`` or return a result that ``check`` accepts; any other
    exception fails the test, naming the case, the seed and the input.  Returns the counts of
    ``"error"`` and ``"valid"`` cases."""
    rng = np.random.default_rng(seed)
    outcome: Counter = Counter()
    for k in range(n):
        bad = _fuzz_mutations(texts[k % len(texts)], rng)
        try:
            result = load(bad)
        except clean_error:
            outcome["error"] += 1
            continue
        except Exception as exc:
            pytest.fail(
                f"case {k} (seed {seed}) raised {type(exc).__name__}: {exc}\ninput: {bad[:300]!r}"
            )
        check(result)
        outcome["valid"] += 1
    return outcome
