"""Run hostile-input cases in a child process with a memory cap and a per-case time limit.

``python tests/_hostile.py CASES.json RESULTS.json MEMORY_BYTES SECONDS`` caps the address
space with ``resource.setrlimit(RLIMIT_AS)`` before importing anything heavy, then runs each
case's code with ``signal.alarm(SECONDS)``, and writes one result per case:
``{"id", "outcome", "type", "message", "code", "stderr", "value", "seconds"}``.

A case is ``{"id": str, "code": str}``; the code runs with ``lc`` (linncore), ``np``, ``P``
(the paths the parent made, by name), ``cli(argv)`` (runs ``linncore.cli.main`` and returns
``(exit code, stderr)``) and may set ``value`` to report something back.  An exception
ends the case: its type name and message are the result.  The parent (``test_hostile_inputs``)
says what each case must end with.  Each case's id goes to stderr before it runs, so when the
child itself dies (a crash, the memory cap) the last id printed names the culprit.
"""

from __future__ import annotations

import contextlib
import io
import json
import resource
import signal
import sys
import time


class CaseTimeout(BaseException):
    """The case ran past its time limit (a hang)."""


def _alarm(signum, frame):
    raise CaseTimeout("the case did not finish in time")


def main() -> None:
    cases_path, results_path = sys.argv[1], sys.argv[2]
    memory, seconds = int(sys.argv[3]), int(sys.argv[4])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    import numpy as np

    import linncore as lc
    from linncore.cli import main as cli_main

    lc.set_num_threads(1)

    def cli(argv):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli_main([str(a) for a in argv])
        return code, err.getvalue()

    with open(cases_path) as fh:
        spec = json.load(fh)
    signal.signal(signal.SIGALRM, _alarm)
    results = []
    for case in spec["cases"]:
        ns = {"lc": lc, "np": np, "P": spec["paths"], "cli": cli, "value": None}
        out = {
            "id": case["id"],
            "outcome": "ok",
            "type": None,
            "message": "",
            "code": None,
            "stderr": "",
        }
        start = time.monotonic()
        print(case["id"], file=sys.stderr, flush=True)
        signal.alarm(seconds)
        try:
            exec(case["code"], ns)
        except CaseTimeout as exc:
            out.update(outcome="timeout", type="CaseTimeout", message=str(exc))
        except BaseException as exc:
            out.update(
                outcome="raised",
                type=type(exc).__name__,
                message=str(exc)[:2000],
                length=len(str(exc)),
            )
        finally:
            signal.alarm(0)
        out["seconds"] = time.monotonic() - start
        value = ns.get("value")
        is_cli = isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int)
        if is_cli:  # a cli() result
            out["code"], out["stderr"] = value[0], value[1][:2000]
            out["length"] = len(value[1])
        elif value is not None:
            plain = isinstance(value, (int, float, str, bool, list))
            out["value"] = value if plain else repr(value)
        results.append(out)
    with open(results_path, "w") as fh:
        json.dump(results, fh)


if __name__ == "__main__":
    main()
