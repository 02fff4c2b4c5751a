"""Snapshot walk vs GNU find on the same 150,000-entry tree (issue 3).

Both contenders read the same metadata for every entry: one lstat (type, mode, owner, size,
mtime, inode) and, for symlinks, the target: the snapshot engine's `walk()` (one pass,
directories opened once, entries lstat'ed relative to them) and
`find ROOT -printf '%y %m %U %G %s %T@ %i %l\\n'` writing to /dev/null (GNU find stats every
entry for these directives). A third row is the walk a capture does after its command
(`walk(previous=...)`), which reuses the listings of directories that did not change and
still lstats every entry. A fourth row is the same walk with the per-entry loop still inlined
in `walk_into` (the engine as it was before the loop became `_scan`, read from git), so the
cost of that split is measured side by side (which of the two goes first alternates by
round). Runs alternate, five rounds, in one process; wall-clock and CPU (user + system)
medians and their ratios go to docs/benchmarks/walk.md.
"""

import importlib.util
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".collections"))
from ansible_collections.mo.fleet.plugins.module_utils._capture import snapshot  # noqa: E402

ENTRIES = 150_000
ROUNDS = 5
FIND_FORMAT = "%y %m %U %G %s %T@ %i %l\\n"
ENGINE = "plugins/module_utils/_capture/snapshot.py"


def inlined_engine():
    """snapshot.py as it was before its per-entry loop left walk_into (the parent of the commit
    that added ``_scan``), loaded beside the current one; None outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout

    try:
        split = git("log", "--format=%H", "-S", "def _scan(snap", "--", ENGINE).split()[-1]
        source = git("show", f"{split}^:{ENGINE}")
    except (subprocess.CalledProcessError, IndexError, OSError):
        return None
    with tempfile.NamedTemporaryFile("w", prefix="snapshot-inlined-", suffix=".py", delete=False) as handle:
        handle.write(source)
    try:
        spec = importlib.util.spec_from_file_location("mo_fleet_bench_inlined_snapshot", handle.name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        os.unlink(handle.name)
    return module


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


def _cpu(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def time_walk(base, previous=None, engine=snapshot):
    wall, cpu = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
    snap = engine.walk([str(base)], [], previous=previous, keep_listings=previous is None)
    return time.perf_counter() - wall, _cpu(resource.RUSAGE_SELF) - cpu, snap


def time_find(base):
    wall, cpu = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN)
    with open(os.devnull, "w") as sink:
        subprocess.run(["find", str(base), "-printf", FIND_FORMAT], stdout=sink, check=True)
    return time.perf_counter() - wall, _cpu(resource.RUSAGE_CHILDREN) - cpu


def main():
    work = Path(tempfile.mkdtemp(prefix="mo-fleet-bench-walk-", dir="/var/tmp"))
    try:
        make_tree(work)
        # the listings may only be reused once the tree is older than the racy margin
        time.sleep(snapshot.LISTING_MARGIN_NS / 1e9 + 0.5)
        rows = {"walk": [], "find": [], "again": [], "inlined": []}
        counted = reused = 0
        inlined = inlined_engine()
        for round_ in range(ROUNDS):
            if inlined is not None and round_ % 2:  # the inlined walk goes first every other round
                wall, cpu, same = time_walk(work, engine=inlined)
                rows["inlined"].append((wall, cpu))
            wall, cpu, snap = time_walk(work)
            counted = len(snap)
            rows["walk"].append((wall, cpu))
            if inlined is not None and not round_ % 2:
                wall, cpu, same = time_walk(work, engine=inlined)
                rows["inlined"].append((wall, cpu))
            if inlined is not None:
                assert same.entries == snap.entries
                del same
            rows["find"].append(time_find(work))
            wall, cpu, again = time_walk(work, previous=snap)
            reused = again.reused_listings
            rows["again"].append((wall, cpu))
            del snap, again
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: (statistics.median(w for w, _c in v), statistics.median(c for _w, c in v)) for k, v in rows.items() if v}
    (walk_s, walk_c), (find_s, find_c), (again_s, again_c) = med["walk"], med["find"], med["again"]
    split_row = "\n(The inlined walk was not measured: no git history of the engine here.)\n"
    if "inlined" in med:
        inl_s, inl_c = med["inlined"]
        split_row = f"""
The per-entry loop as its own function (`_scan`, called once per directory) against the same
loop inlined in `walk_into` (the engine before the split), in the same rounds:

| contender | median wall s | median CPU s | wall / inlined | CPU / inlined |
| --- | ---: | ---: | ---: | ---: |
| `walk()`, loop in `_scan` (mo.fleet) | {walk_s:.3f} | {walk_c:.3f} | {walk_s / inl_s:.3f} | {walk_c / inl_c:.3f} |
| `walk()`, loop inlined in `walk_into` | {inl_s:.3f} | {inl_c:.3f} | 1.000 | 1.000 |
"""
    load = os.getloadavg()
    report = f"""# Snapshot walk vs GNU find

`benchmarks/bench_walk.py`, run {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}: one pass over a
generated tree of {counted:,} entries (directories, files, symlinks) on this machine's disk, reading
for every entry what the other reads (lstat: type, mode, owner, size, mtime, inode; symlink
targets), {ROUNDS} alternating rounds, medians. Load average at the end: {load[0]:.1f} / {load[1]:.1f} /
{load[2]:.1f} on 2 shared cores, so the CPU-time columns (user + system of the walking process)
are the steadier comparison.

| contender | median wall s | entries/s | median CPU s | wall / find | CPU / find |
| --- | ---: | ---: | ---: | ---: | ---: |
| `snapshot.walk()` (mo.fleet) | {walk_s:.3f} | {counted / walk_s:,.0f} | {walk_c:.3f} | {walk_s / find_s:.2f} | {walk_c / find_c:.2f} |
| `find -printf '{FIND_FORMAT.rstrip(chr(92) + "n")}'` | {find_s:.3f} | {counted / find_s:,.0f} | {find_c:.3f} | 1.00 | 1.00 |
| `snapshot.walk(previous=...)` (a capture's after-walk, nothing changed: {reused:,} listings reused) | {again_s:.3f} | {counted / again_s:,.0f} | {again_c:.3f} | {again_s / find_s:.2f} | {again_c / find_c:.2f} |

Ratio walk / find: **{walk_s / find_s:.2f}** wall clock, **{walk_c / find_c:.2f}** CPU time (below 1 means the
walk is faster). The walk also builds the in-memory snapshot (a dict of {counted:,} tuples) that
find does not; find only formats lines into /dev/null.
{split_row}"""
    out = ROOT / "docs" / "benchmarks" / "walk.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
