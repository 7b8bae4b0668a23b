#!/usr/bin/env bash
# The README's test command: set up .venv with the dev tools, then run the fast tier
# (under ten minutes on 2 cores). --all adds the slow tiers (slow, realdata, docker,
# ray), as .ci/run does. Other arguments go to pytest (e.g. -k latency).
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
tier="fast tier (slow, realdata, docker and ray tests are listed as skipped; --all runs them)"
for arg in "$@"; do
  if [[ $arg == --all ]]; then
    args+=(--all-tiers)
    tier="all tiers"
  else
    args+=("$arg")
  fi
done
start=$(date +%s)
bash scripts/setup.sh --dev
echo "== tests: $tier"
status=0
.venv/bin/pytest "${args[@]}" || status=$?
echo "== setup and tests took $(( $(date +%s) - start )) s"
exit $status
