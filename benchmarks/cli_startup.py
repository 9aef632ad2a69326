"""Start-up time of the ``scseg`` command: help and usage errors, which need no model.

Each command runs as a fresh ``python -m scseg.cli`` process, 5 times (median, minimum).
``--before REV`` measures a git revision too (in a temporary worktree, same environment).

    uv run python benchmarks/cli_startup.py --before 69b2022
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import markdown_table, revision_trees, write

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "scseg --help": ["--help"],
    "scseg data --help": ["data", "--help"],
    "scseg predict --help": ["predict", "--help"],
    "scseg predict (missing arguments)": ["predict"],
    "scseg predict --overlap 1.5": [
        "predict",
        "--checkpoint",
        "c",
        "--input",
        "i",
        "--output",
        "o",
        "--overlap",
        "1.5",
    ],
}


def seconds(source: Path, args: list[str], repeats: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "scseg.cli", *args], env=env, cwd=source,
                       capture_output=True, check=False)  # fmt: skip
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a git revision to measure as well")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with revision_trees(ROOT, args.before) as trees:
        for name, argv in COMMANDS.items():
            row: dict = {"command": name}
            for label, tree in trees.items():
                t = seconds(tree, argv, args.repeats)
                row[label] = {"median_s": statistics.median(t), "min_s": min(t)}
            rows.append(row)
            print(row, flush=True)
    headers = ["command", *[f"{label} (median s)" for label in trees]]
    table = [[r["command"], *[f"{r[label]['median_s']:.2f}" for label in trees]] for r in rows]
    meta = {"repeats": args.repeats, "revisions": list(trees)}
    for path in write("cli_startup", rows, markdown_table(headers, table), meta):
        print(path)


if __name__ == "__main__":
    main()
