#!/usr/bin/env bash
# `make bench`: run every benchmark (each measures side by side in one run and writes its
# section under docs/benchmarks/), then index the sections in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/benchmarks
for bench in benchmarks/bench_*.py; do
  [ -e "$bench" ] || continue
  echo "===== $bench ====="
  python "$bench"
done
{
  echo "# Benchmarks"
  echo
  echo "Measured by \`make bench\` on this project's lab machine (2 cores). Each benchmark runs"
  echo "its contenders side by side in one run and reports ratios, since the machine is noisy."
  echo
  for section in docs/benchmarks/*.md; do
    [ -e "$section" ] || continue
    echo "- [$(head -1 "$section" | sed 's/^# *//')]($section)"
  done
} > docs/benchmarks.md
echo "wrote docs/benchmarks.md"
