#!/usr/bin/env bash
# The real-engine tier: start a Docker engine if none answers (as root), build the CPU
# base and both images on it, run the docker-marked tests, then the publish/reproduce
# path through a real registry: start Debian's docker-registry on 127.0.0.1:5000 (a
# config written here: filesystem storage in a temp folder, no auth), push both images,
# check the lock holds both digests, remove the images, pull them back by digest, run the
# smoke study (at a smaller size) in containers, and `harness reproduce` it: every
# artifact of both frameworks must be bit-identical. Stops the registry and any engine it
# started by PID.
#
# The tracked images/lock.toml is never written: the digests go into a copy named by
# $HARNESS_IMAGE_LOCK, and $HARNESS_REGISTRY points push and pull at the local registry.
# Exit 0 with "SKIPPED: <why>" when this machine cannot run an engine; non-zero when the
# tier ran and failed. With $HARNESS_ENGINE_PIDFILE set, an engine it started is left
# running and its PID written there (.ci/run's later tiers need it; .ci/run stops it).
#
# --build-only stops after the images are built (engine, CPU base, both images): .ci/run
# runs that in the background while the tests run (it is mostly downloads), and the
# full tier after them finds every layer in the build cache.
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=0
case "${1:-}" in
  --build-only) build_only=1 ;;
  "") ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac
REGISTRY_ADDR=127.0.0.1:5000
skip() { echo "tier docker: SKIPPED, $1"; exit 0; }
tier_start=$(date +%s)
step_start=$tier_start
ran=()
step() {  # step NAME: print how long the step since the last call took
  local now; now=$(date +%s)
  echo "tier docker: TIME $1 $(( now - step_start )) s"
  ran+=("$1")
  step_start=$now
}
work=$(mktemp -d)
ENGINE_PID=""  # the dockerd this tier started, if any (start_engine sets it)
registry_pid=""
cleanup() {
  if [[ -n "$registry_pid" ]]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
    echo "tier docker: stopped the registry it started (pid $registry_pid)"
  fi
  rm -rf "$work/registry"  # the pushed layers: several GB
  if [[ -n "$ENGINE_PID" && -n "${HARNESS_ENGINE_PIDFILE:-}" ]]; then
    # .ci/run's later tiers (cluster, CUDA) use this engine; .ci/run stops it at its end.
    echo "$ENGINE_PID" >"$HARNESS_ENGINE_PIDFILE"
    echo "tier docker: left the engine it started running for the next tiers (pid $ENGINE_PID)"
  elif [[ -n "$ENGINE_PID" ]]; then
    kill "$ENGINE_PID" 2>/dev/null || true
    wait "$ENGINE_PID" 2>/dev/null || true
    echo "tier docker: stopped the engine it started (pid $ENGINE_PID)"
  fi
  echo "tier docker: ran: ${ran[*]:-nothing}"
}
trap cleanup EXIT

source scripts/ci-engine.sh
need_packages=()
command -v debootstrap >/dev/null || need_packages+=(debootstrap)
command -v docker-registry >/dev/null || need_packages+=(docker-registry)
if ! engine_answers; then
  start_engine "$work/dockerd.log" "${need_packages[@]}" || skip "$ENGINE_PROBLEM"
  need_packages=()
fi
if (( ${#need_packages[@]} )) && [[ $(id -u) -eq 0 ]]; then
  (apt-get update -qq && apt-get install -y -qq "${need_packages[@]}" >/dev/null) || true
fi
echo "tier docker: engine $(.venv/bin/python -c 'import docker; print(docker.from_env().version()["Version"])')"
step engine

bash scripts/build-cpu-base.sh
.venv/bin/harness images build --base quant-harness/cpu-base:bookworm
step build
if (( build_only )); then
  echo "tier docker: images built (--build-only); the tests, registry and studies come next"
  exit 0
fi

# The docker-marked tests come before the images are removed: the image test rebuilds
# the TensorFlow image, all from cache while the build's layers are still here.
env -u HARNESS_IMAGE_LOCK -u HARNESS_REGISTRY .venv/bin/pytest -q -p no:cacheprovider --all-tiers -m docker tests
step docker-tests

# -- publish and reproduce through a real registry ---------------------------------------
command -v docker-registry >/dev/null \
  || { echo "tier docker: docker-registry is not installed (apt-get install docker-registry)"; exit 1; }
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $REGISTRY_ADDR
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 50); do
  .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://$REGISTRY_ADDR/v2/', timeout=1)" 2>/dev/null && break
  kill -0 "$registry_pid" 2>/dev/null || { cat "$work/registry.log"; echo "tier docker: the registry exited"; exit 1; }
  sleep 0.2
done
echo "tier docker: registry on $REGISTRY_ADDR (pid $registry_pid, storage $work/registry)"
cp images/lock.toml "$work/lock.toml"
tracked_lock=$(sha256sum images/lock.toml)
export HARNESS_IMAGE_LOCK="$work/lock.toml" HARNESS_REGISTRY="$REGISTRY_ADDR"
step registry-start

.venv/bin/harness images push
.venv/bin/python - "$HARNESS_IMAGE_LOCK" <<'EOF'
import re, sys, tomllib
lock = tomllib.load(open(sys.argv[1], "rb"))
for fw in ("pytorch", "tensorflow"):
    digest, ref = lock[fw].get("published_digest", ""), lock[fw].get("published_ref", "")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{fw}: no digest in the lock"
    assert ref.startswith("127.0.0.1:5000/") and ref.endswith("@" + digest), f"{fw}: ref {ref}"
    print(f"tier docker: lock records {fw} {ref}")
EOF
[[ $(sha256sum images/lock.toml) == "$tracked_lock" ]] \
  || { echo "tier docker: the push wrote the tracked images/lock.toml"; exit 1; }
step push

# Remove every local name of both images, so the pull below must fetch them by digest.
for fw in pytorch tensorflow; do
  id=$(docker image inspect --format '{{.Id}}' "quant-harness/$fw:$(.venv/bin/python -c 'import harness_contract; print(harness_contract.__version__)')")
  docker image rm --force "$id" >/dev/null
  if docker image inspect "$id" >/dev/null 2>&1; then echo "tier docker: $fw image $id still here"; exit 1; fi
  echo "tier docker: removed the local $fw image $id"
done
step remove

.venv/bin/harness images pull
step pull

results=$(mktemp -d)
# The smoke preset's phases and rungs at a smaller size: what the containers must prove
# (every phase, rung, trace and file, bit for bit) does not depend on it, CI's time does.
tiny=(--set model.width_multiplier=0.125 --set data.train_limit=256 --set data.test_limit=128
      --set train.epochs=1 --set ptq.calibration_samples=32)
.venv/bin/harness compare --backend docker --preset smoke "${tiny[@]}" --results "$results" --run-id docker-smoke
.venv/bin/python scripts/check_docker_run.py "$results/docker-smoke" --locked "$HARNESS_IMAGE_LOCK"
step smoke-compare

if .venv/bin/harness reproduce --help >/dev/null 2>&1; then
  .venv/bin/harness reproduce "$results/docker-smoke" --backend docker
  .venv/bin/python scripts/check_docker_run.py --reproduction "$results"
  step reproduce
else
  echo "tier docker: SKIPPED reproduce: this harness has no \`harness reproduce\`"
fi
echo "tier docker: TIME total $(( $(date +%s) - tier_start )) s"
echo "tier docker: passed"
