#!/usr/bin/env bash
# `make bench`: run every benchmark (each measures side by side in one run and writes its
# section under docs/benchmarks/, summarised in docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/benchmarks
for bench in benchmarks/bench_*.py; do
  [ -e "$bench" ] || continue
  echo "===== $bench ====="
  python "$bench"
done
echo "sections rewritten under docs/benchmarks/; docs/benchmarks.md summarises their ratios"
