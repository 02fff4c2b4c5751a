"""Snapshot walk vs GNU find on the same 150,000-entry tree (issue 3).

Both contenders read the same metadata (type, mode, owner, size, mtime; symlink targets):
the snapshot engine's `walk()` (os.scandir + lstat, one pass) and
`find ROOT -printf '%y %m %U %G %s %T@ %l\\n'` writing to /dev/null. Runs alternate, five
rounds each, in one process; the median of each and their ratio go to
docs/benchmarks/walk.md.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".collections"))
from ansible_collections.mo.fleet.plugins.module_utils import snapshot  # noqa: E402

ENTRIES = 150_000
ROUNDS = 5


def make_tree(base, entries=ENTRIES):
    """Directories of 50 files each, with a symlink every 25 files: ENTRIES entries in all."""
    made = 0
    d = 0
    while made < entries:
        directory = base / f"d{d // 100:03d}" / f"d{d:05d}"
        directory.mkdir(parents=True, exist_ok=True)
        made += 1 if d % 100 else 2
        for i in range(50):
            if made >= entries:
                break
            path = directory / f"f{i:02d}"
            if i % 25 == 24:
                os.symlink(f"f{i - 1:02d}", path)
            else:
                path.write_bytes(b"x" * (i % 7))
            made += 1
        d += 1


def time_walk(base):
    start = time.perf_counter()
    snap = snapshot.walk([str(base)], [])
    return time.perf_counter() - start, len(snap)


def time_find(base):
    start = time.perf_counter()
    with open(os.devnull, "w") as sink:
        subprocess.run(["find", str(base), "-printf", "%y %m %U %G %s %T@ %l\\n"], stdout=sink, check=True)
    return time.perf_counter() - start


def main():
    work = Path(tempfile.mkdtemp(prefix="mo-fleet-bench-walk-", dir="/var/tmp"))
    try:
        make_tree(work)
        walks, finds, counted = [], [], 0
        for _ in range(ROUNDS):
            seconds, counted = time_walk(work)
            walks.append(seconds)
            finds.append(time_find(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    walk_s, find_s = statistics.median(walks), statistics.median(finds)
    report = f"""# Snapshot walk vs GNU find

`benchmarks/bench_walk.py`: one stat-only pass over a generated tree of {counted:,} entries
(directories, files, symlinks) on this machine's disk, {ROUNDS} alternating rounds, medians.

| contender | median seconds | entries/s |
| --- | ---: | ---: |
| `snapshot.walk()` (mo.fleet) | {walk_s:.3f} | {counted / walk_s:,.0f} |
| `find -printf` (type, mode, owner, size, mtime, link) | {find_s:.3f} | {counted / find_s:,.0f} |

Ratio walk / find: **{walk_s / find_s:.2f}** (below 1 means the walk is faster).
"""
    out = ROOT / "docs" / "benchmarks" / "walk.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
