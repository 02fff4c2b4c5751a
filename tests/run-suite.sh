#!/usr/bin/env bash
# Run the test stages, time each, print a summary, fail if any stage failed.
#   tests/run-suite.sh all | image unit integration molecule lint sanity ...
# Called by `make test` (all) and the per-stage make targets, with the venv on PATH.
#
# `all` runs image and unit first, then integration in the foreground while molecule, lint and
# sanity run one after the other beside it (MO_FLEET_TEST_LANES=2, the default): integration
# waits on hosts booting, apt and SSH much of its time, and the other three fit in those gaps.
# Their output goes to .build/test-logs/STAGE.log, printed in full once integration ends.
# MO_FLEET_TEST_LANES=1 runs every stage in turn, in the foreground. Named stages always run
# in turn.
# shellcheck disable=SC2317  # stage functions are called indirectly, as "stage_$name"
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

JOBS=${MO_FLEET_TEST_JOBS:-3}
LANES=${MO_FLEET_TEST_LANES:-2}
LOGS=.build/test-logs

stage_image()       { python lab/labctl.py image --suite bookworm --suite trixie; }
stage_unit()        { python -m pytest -q -n 2 tests/unit; }
stage_integration() { python -m pytest -q -n "$JOBS" --dist worksteal tests/integration; }
stage_lint()        { ansible-lint --profile production; }

stage_molecule() {
  local scenario rc=0
  python lab/labctl.py cache || return 1  # the scenarios' hosts fetch packages through it
  for scenario in molecule/*/molecule.yml; do
    scenario=$(basename "$(dirname "$scenario")")
    echo "molecule: scenario $scenario"
    molecule test -s "$scenario" || rc=1
  done
  return "$rc"
}

stage_sanity() {
  # Sanity-test what ships, the way Galaxy does: build the collection artifact, unpack it as
  # .../ansible_collections/mo/fleet (ansible-test needs that path) and run there, without
  # Docker. ansible-test's sanity venvs bootstrap pip from a host this machine cannot reach:
  # tests/sanity/get_pip.py stands in for that download.
  local tree=.build/sanity/ansible_collections/mo/fleet
  local pip_version artifact
  pip_version=$(python - <<'PY'
from ansible_test._internal.python_requirements import get_venv_packages
from types import SimpleNamespace
print(get_venv_packages(SimpleNamespace(version='3.11'))['pip'])
PY
)
  mkdir -p "$tree" .build/dist ~/.ansible/test/cache
  cp tests/sanity/get_pip.py ~/.ansible/test/cache/get_pip_"${pip_version//./_}".py
  rm -f .build/dist/*.tar.gz
  ansible-galaxy collection build --force --output-path .build/dist . >/dev/null || return 1
  artifact=$(ls .build/dist/mo-fleet-*.tar.gz)
  # a fresh tree each time, keeping only ansible-test's own cache under tests/output
  find "$tree" -mindepth 1 -maxdepth 1 ! -name tests -exec rm -rf {} +
  [ -d "$tree/tests" ] && find "$tree/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} +
  tar -xzf "$artifact" -C "$tree"
  mkdir -p "$tree/tests/sanity"
  cp tests/sanity/ignore-*.txt "$tree/tests/sanity/" 2>/dev/null || true
  printf 'tests/output/\n' > "$tree/.gitignore"
  (cd "$tree" && git init -q . 2>/dev/null && git add -A >/dev/null &&
   ansible-test sanity --venv --python 3.11 --color no)
}

all_stages=(image unit integration molecule lint sanity)
side_stages=(molecule lint sanity)  # beside integration when LANES=2

declare -a summary
failed=0
suite_start=$SECONDS

# run_stage NAME: run stage NAME in the foreground; add its line to the summary
run_stage() {
  local start status
  echo
  echo "===== stage: $1 ====="
  start=$SECONDS
  if "stage_$1"; then status=ok; else status=FAILED; failed=1; fi
  summary+=("$(printf '%-12s %-7s %5ss' "$1" "$status" $((SECONDS - start)))")
}

# side_lane NAME...: run the stages in turn, each into $LOGS/NAME.log; one line per stage
# (name, ok or FAILED, seconds) into $LOGS/side.summary
side_lane() {
  local s start status
  : > "$LOGS/side.summary"
  for s in "$@"; do
    start=$SECONDS
    if "stage_$s" > "$LOGS/$s.log" 2>&1; then status=ok; else status=FAILED; fi
    printf '%s %s %s\n' "$s" "$status" $((SECONDS - start)) >> "$LOGS/side.summary"
  done
}

if [ "${1:-all}" = all ] && [ "$LANES" = 2 ]; then
  run_stage image
  run_stage unit
  mkdir -p "$LOGS"
  rm -f "$LOGS"/*.log "$LOGS/side.summary"
  echo
  echo "===== stages ${side_stages[*]}: beside integration, output in $LOGS/ ====="
  side_lane "${side_stages[@]}" &
  side_pid=$!
  run_stage integration
  wait "$side_pid"
  while read -r s status seconds; do
    echo
    echo "===== stage: $s (ran beside integration; $LOGS/$s.log) ====="
    cat "$LOGS/$s.log"
    [ "$status" = ok ] || failed=1
    summary+=("$(printf '%-12s %-7s %5ss' "$s" "$status" "$seconds")")
  done < "$LOGS/side.summary"
  for s in "${side_stages[@]}"; do  # a stage the lane never got to counts as failed
    grep -q "^$s " "$LOGS/side.summary" || { failed=1; summary+=("$(printf '%-12s %-7s' "$s" FAILED)"); }
  done
else
  if [ "${1:-all}" = all ]; then stages=("${all_stages[@]}"); else stages=("$@"); fi
  for s in "${stages[@]}"; do run_stage "$s"; done
fi
echo
echo "===== summary (stage, result, seconds) ====="
printf '%s\n' "${summary[@]}"
printf '%-12s %-7s %5ss\n' total "$([ $failed = 0 ] && echo ok || echo FAILED)" $((SECONDS - suite_start))
exit $failed
