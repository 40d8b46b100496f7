"""`make bench`: runs every benchmarks/bench_*.py module's main(argv), or only those named on the command line.

Each benchmark prints what it measured, on what machine, with ratios against a baseline measured in the same run.
"""

import importlib
import logging
import pkgutil
import sys
from pathlib import Path

log = logging.getLogger("benchmarks")


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
    wanted = [a for a in argv if a in names] or names
    rest = [a for a in argv if a not in names]  # options, with their values, go to every benchmark run
    for name in wanted:
        log.info("== %s ==", name)
        importlib.import_module(f"benchmarks.{name}").main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
