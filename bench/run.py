"""Run every benchmark module bench/bench_*.py (each has main()); `make bench` calls this."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    failed = []
    for name in names:
        print(f"=== {name}", flush=True)
        saved_argv, sys.argv = sys.argv, [f"bench/{name}.py"]  # benchmarks read their own argv
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception as exc:  # one failing benchmark must not hide the others' numbers
            print(f"!!! {name} failed: {exc!r}", flush=True)
            failed.append(name)
        finally:
            sys.argv = saved_argv
    if failed:
        print("failed benchmarks:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
