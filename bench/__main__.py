"""`make bench`: run every benchmark module (bench/bench_*.py) or the ones named.

Each module has `main(argv: list[str]) -> None` and prints its figures as ratios against a
baseline measured side by side in the same run. Benchmarks are not tests: they never fail
on a number; they report it.

    python -m bench                 # all but the probe
    python -m bench engine gateway  # bench_engine.py and bench_gateway.py
    python -m bench probe           # the fault-injection probe (bench_probe.py): named only
"""

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

NAMED_ONLY = {"probe"}


def main(argv: list[str]) -> None:
    names = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    # The probe stalls and stops its own servers for minutes: it runs only when named.
    chosen = [a for a in argv if not a.startswith("-")] or [n for n in names if n not in NAMED_ONLY]
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        sys.exit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}")
    flags = [a for a in argv if a.startswith("-")]
    if len(chosen) > 1:
        # Each benchmark sets Django up on its own scratch database: one process apiece.
        failed = [n for n in chosen if subprocess.run([sys.executable, "-m", "bench", n, *flags]).returncode]
        if failed:
            sys.exit(f"benchmark(s) failed to run: {', '.join(failed)}")
        return
    name = chosen[0]
    print(f"\n===== bench {name} =====", flush=True)
    importlib.import_module(f"bench.bench_{name}").main(flags)


if __name__ == "__main__":
    main(sys.argv[1:])
