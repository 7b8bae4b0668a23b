#!/usr/bin/env bash
# The real-engine tier: start a Docker engine if none answers (as root), build the CPU
# base and both images on it, run the smoke study in containers, check the result,
# and stop the engine this script started. Exit 0 with "SKIPPED: <why>" when this
# machine cannot run an engine; non-zero when the tier ran and failed.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() { echo "tier docker: SKIPPED, $1"; exit 0; }
started_pid=""
cleanup() {
  if [[ -n "$started_pid" ]]; then
    kill "$started_pid" 2>/dev/null || true
    wait "$started_pid" 2>/dev/null || true
    echo "tier docker: stopped the engine it started (pid $started_pid)"
  fi
}
trap cleanup EXIT

if ! docker_ok=$(.venv/bin/python -c 'import docker; docker.from_env().ping(); print("yes")' 2>/dev/null); then
  [[ $(id -u) -eq 0 ]] || skip "no Docker engine answers and starting one needs root"
  if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq docker.io debootstrap >/dev/null) \
      || skip "docker.io/debootstrap could not be installed from Debian's packages"
  fi
  dockerd >/tmp/ci-dockerd.log 2>&1 &
  started_pid=$!
  for _ in $(seq 1 60); do [[ -S /var/run/docker.sock ]] && break; sleep 1; done
  .venv/bin/python -c 'import docker; docker.from_env().ping()' 2>/dev/null \
    || skip "dockerd did not come up (see /tmp/ci-dockerd.log)"
fi
echo "tier docker: engine $(.venv/bin/python -c 'import docker; print(docker.from_env().version()["Version"])')"

start=$(date +%s)
bash scripts/build-cpu-base.sh
.venv/bin/harness images build --base quant-harness/cpu-base:bookworm
echo "tier docker: images built in $(( $(date +%s) - start )) s"

results=$(mktemp -d)
.venv/bin/harness compare --backend docker --preset smoke --results "$results" --run-id docker-smoke
.venv/bin/python scripts/check_docker_run.py "$results/docker-smoke"
.venv/bin/pytest -q -p no:cacheprovider -m docker tests
echo "tier docker: passed in $(( $(date +%s) - start )) s"
