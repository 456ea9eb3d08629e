"""Cost of one sandboxed program, as ratios against a bare interpreter measured in the same run.

Each figure is the median wall time over RUNS runs of `pass`, interleaved so that load on the
machine falls on all of them alike:

1. bare `python -I -S -c pass` (the reference);
2. `run_python` at the weak level (guard and limits only);
3. `run_python` at the strong level (bubblewrap namespaces, seccomp, guard and limits), when this
   host has namespaces;
4. bubblewrap alone around the bare interpreter (the strong level without the guard and without
   the lab's supervision), to show where the cost goes.

    PYTHONPATH=. python bench/sandbox.py [runs]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from lab import sandbox
from lab.sandbox import STRONG, Limits, isolation, run_python


def _bare() -> None:
    subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True, env={})


def _bwrap_only() -> None:
    opened: list[int] = []
    argv = sandbox._strong_argv(Limits(), b"pass", 2, opened)
    exe = os.path.realpath(sys.executable)
    try:
        subprocess.run(argv[:argv.index(exe, len(argv) - 20)] + [exe, "-I", "-S", "-c", "pass"], check=True, env={},
                       pass_fds=opened)
    finally:
        for fd in opened:
            os.close(fd)


def _checked(weak: bool):
    def run() -> None:
        r = run_python("pass", weak=weak)
        assert r.ok, r.message
    return run


def main(runs: int = 30) -> None:
    cases = {"bare python -I -S": _bare, "weak (audit hook)": _checked(True)}
    strong = isolation() == STRONG
    if strong:
        cases["strong (bubblewrap)"] = _checked(False)
        cases["bubblewrap alone"] = _bwrap_only
    for fn in cases.values():  # warm up: page cache, the namespace probe
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    ref = statistics.median(times["bare python -I -S"])
    print(f"sandbox cost per program, median of {runs} runs, {os.cpu_count()} CPUs; level here: {isolation()}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<22} {med * 1000:6.1f} ms   x{med / ref:.2f} of bare")
    if not strong:
        print("  (no namespaces here: the strong level was not measured)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
