#!/usr/bin/env bash
# The container-cluster tier (docs/cluster.md): a Ray head and two workers, each its own
# container started --network host by scripts/ray-node.sh (the recipe users follow),
# sharing nothing but the network, built FROM the CPU framework images that
# scripts/ci-docker-tier.sh builds (run it first). tests/test_cluster_tier.py then runs a
# sweep of both frameworks (a point each) from a driver outside the containers (checked
# bit-identical against the local executor), the same sweep as a Ray job, a worker
# stopped mid-sweep and --resume, and the refusal of a worker with other harness code and
# of one without the dataset. Prints each scenario's time.
#
# Exit 0 with "SKIPPED: <why>" where no engine or no framework image is here; non-zero
# when the tier ran and failed. Every container and image it made is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
skip() { echo "tier cluster: SKIPPED, $1"; exit 0; }
export QH_CLUSTER_RUN="qh-cluster-$$"  # the name prefix of all this run makes
cleanup() {
  local containers images
  containers=$(docker ps -aq --filter "name=^/$QH_CLUSTER_RUN-" 2>/dev/null || true)
  [[ -z $containers ]] || docker rm -f $containers >/dev/null 2>&1 || true
  # QH_CLUSTER_KEEP_IMAGES=1 keeps the node images: the next run builds from their cache.
  [[ ${QH_CLUSTER_KEEP_IMAGES:-} == 1 ]] && return
  images=$(docker images -q --filter "reference=$QH_CLUSTER_RUN-*" 2>/dev/null | sort -u || true)
  [[ -z $images ]] || docker image rm -f $images >/dev/null 2>&1 || true
}

command -v docker >/dev/null || skip "no docker CLI here"
docker info >/dev/null 2>&1 || skip "no Docker engine answers (scripts/ci-docker-tier.sh starts one)"
command -v unshare >/dev/null || skip "no unshare (util-linux): the driver needs a PID namespace"
.venv/bin/python -c 'import ray' 2>/dev/null || skip "no Ray in .venv (bash scripts/setup.sh --dev)"
version=$(.venv/bin/python -c 'import harness_contract; print(harness_contract.__version__)')
for fw in pytorch tensorflow; do
  docker image inspect "quant-harness/$fw:$version" >/dev/null 2>&1 \
    || skip "no image quant-harness/$fw:$version (scripts/ci-docker-tier.sh builds it)"
done
trap cleanup EXIT

status=0
QH_CLUSTER_TIER=1 .venv/bin/pytest -q -s -p no:cacheprovider -m cluster \
  tests/test_cluster_tier.py || status=$?
echo "tier cluster: TIME total $(( $(date +%s) - start )) s"
if (( status == 0 )); then echo "tier cluster: passed"; else echo "tier cluster: FAILED"; fi
exit $status
