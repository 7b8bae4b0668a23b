#!/usr/bin/env bash
# Ray nodes of the harness in containers: the recipe of docs/cluster.md, run as written by
# the cluster tier (scripts/ci-cluster-tier.sh). Every node is its own container started
# with --network host, as the non-root user of its image, with nothing mounted: the
# harness is in the image and a worker's dataset is copied into it.
#
#   ray-node.sh build  [--tag-prefix P]        node images P-pytorch:V, P-tensorflow:V
#                                              FROM quant-harness/{pytorch,tensorflow}:V
#   ray-node.sh head   NAME IMAGE [--port 6379] [--dashboard-port 8265]
#                      [--client-port 10001] [--agent-port 52365] [--ip IP]
#   ray-node.sh worker NAME IMAGE --address HEAD:PORT --framework F [--cpus 1]
#                      [--data DIR] [--agent-port 52365] [--ip IP]
#   ray-node.sh driver HEAD:PORT [--ip IP] -- COMMAND...   this machine joins as a
#                      0-CPU node (a Ray driver talks to its own node), runs COMMAND, leaves
#
# --ip: the address a node advertises (Ray's --node-ip-address); leave it out on a real
# cluster. All on one machine, give each node a loopback address of its own other than
# 127.0.0.1 (127.0.0.2, 127.0.0.3, ...): Ray replaces 127.0.0.1 with the machine's public
# address. $RAY_AUTH_MODE and $RAY_AUTH_TOKEN, when set, pass into every node.
set -euo pipefail
SELF=$(realpath "$0")
ROOT=$(dirname "$(dirname "$SELF")")
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}  # the driver's interpreter: its Ray and harness
VERSION=$("$PYTHON" -c 'import harness_contract; print(harness_contract.__version__)')
NODE_DATA=/home/harness/cifar10  # where a worker holds its dataset: the sweep's --data
OBJECT_STORE_BYTES=100000000     # points ship small archives; Ray's minimum is 75 MB
die() { echo "ray-node: $1" >&2; exit 2; }

# The flags of every node's container: the machine's network (Ray's nodes reach each
# other's ports directly; never a bridge network), the image's non-root user, and the
# token (passed by name, so it is not on any command line).
RUN_FLAGS=(--network host --init --shm-size 256m --user 1000:1000 -e RAY_AUTH_MODE -e RAY_AUTH_TOKEN)

build() {
  local prefix=quant-harness/ray-node
  while (($#)); do
    case $1 in
      --tag-prefix) prefix=$2; shift 2 ;;
      *) die "build: unknown option $1" ;;
    esac
  done
  local stage; stage=$(mktemp -d)
  # shellcheck disable=SC2064  # expand now: $stage is local
  trap "rm -rf '$stage'" RETURN
  # Ray pinned to the driver's own (a node of another version cannot join its cluster),
  # and the host package's dependencies from pyproject.toml.
  "$PYTHON" -c '
import importlib.metadata as m, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("ray[default]==" + m.version("ray"), *project["dependencies"], sep="\n")
' "$ROOT/pyproject.toml" >"$stage/requirements.txt"
  # Wheels resolved here at the driver's versions, so the image builds offline (kept in
  # images/ray-node/wheels, git-ignored, for the next build).
  local wheels=$ROOT/images/ray-node/wheels
  mkdir -p "$wheels"
  "$PYTHON" -m pip freeze --exclude-editable | grep -E '^[A-Za-z0-9._-]+==' >"$stage/driver.txt"
  "$PYTHON" -m pip download -q --only-binary=:all: -d "$wheels" \
    -r "$stage/requirements.txt" -c "$stage/driver.txt" 2> >(grep -v '^WARNING: Location' >&2)
  mkdir "$stage/wheels"
  cp -al "$wheels/." "$stage/wheels/" 2>/dev/null || cp -r "$wheels/." "$stage/wheels/"
  # The sources the driver's code digest covers, from where the driver imports them.
  "$PYTHON" -c '
import importlib.util, shutil, sys
from harness.sweep.code_digest import PACKAGES
for name in PACKAGES:
    root = importlib.util.find_spec(name).submodule_search_locations[0]
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(root, f"{sys.argv[1]}/{name}", ignore=skip)
' "$stage/src"
  local digest  # of the staged copy: run from it, it is what Python finds first
  digest=$(cd "$stage/src" && "$PYTHON" -c \
    'from harness.sweep.code_digest import code_digest; print(code_digest())')
  cp "$ROOT/images/ray-node/Dockerfile" "$stage/Dockerfile"
  for fw in pytorch tensorflow; do
    docker image inspect "quant-harness/$fw:$VERSION" >/dev/null 2>&1 \
      || die "no image quant-harness/$fw:$VERSION: build it first (harness images build)"
    docker build -q --network none --build-arg "FRAMEWORK_IMAGE=quant-harness/$fw:$VERSION" \
      --build-arg "VERSION=$VERSION" --label "io.quant-harness.code-digest=$digest" \
      -t "$prefix-$fw:$VERSION" "$stage" >/dev/null
    echo "ray-node: built $prefix-$fw:$VERSION (harness code digest $digest)"
  done
}

start_head() {
  local name=$1 image=$2; shift 2
  local port=6379 dashboard=8265 client=10001 agent=52365 ip=""
  while (($#)); do
    case $1 in
      --port) port=$2 ;; --dashboard-port) dashboard=$2 ;; --client-port) client=$2 ;;
      --agent-port) agent=$2 ;; --ip) ip=$2 ;; *) die "head: unknown option $1" ;;
    esac
    shift 2
  done
  # No CPUs: the head schedules, serves jobs and runs no point.
  local start=(ray start --head --block --disable-usage-stats --num-cpus 0 --port "$port")
  start+=(--include-dashboard true --dashboard-host "${ip:-0.0.0.0}")
  start+=(--dashboard-port "$dashboard" --ray-client-server-port "$client")
  start+=(--dashboard-agent-listen-port "$agent" --object-store-memory "$OBJECT_STORE_BYTES")
  [[ -z $ip ]] || start+=(--node-ip-address "$ip")
  docker run -d --name "$name" "${RUN_FLAGS[@]}" "$image" "${start[@]}" >/dev/null
  echo "ray-node: head $name on port $port, jobs at http://${ip:-HOST}:$dashboard"
}

start_worker() {
  local name=$1 image=$2; shift 2
  local address="" framework="" cpus=1 data="" agent=52365 ip=""
  while (($#)); do
    case $1 in
      --address) address=$2 ;; --framework) framework=$2 ;; --cpus) cpus=$2 ;;
      --data) data=$2 ;; --agent-port) agent=$2 ;; --ip) ip=$2 ;;
      *) die "worker: unknown option $1" ;;
    esac
    shift 2
  done
  [[ -n $address && -n $framework ]] || die "worker: --address and --framework are required"
  # The executor sends a point only to nodes advertising its framework's resource.
  local start=(ray start --block --disable-usage-stats --address "$address" --num-cpus "$cpus")
  start+=(--resources "{\"harness_$framework\": 1}" --dashboard-agent-listen-port "$agent")
  start+=(--object-store-memory "$OBJECT_STORE_BYTES")
  [[ -z $ip ]] || start+=(--node-ip-address "$ip")
  docker create --name "$name" "${RUN_FLAGS[@]}" "$image" "${start[@]}" >/dev/null
  # The node's own copy of the dataset, made before Ray starts (nothing is mounted).
  [[ -z $data ]] || docker cp "$data/." "$name:$NODE_DATA" >/dev/null
  docker start "$name" >/dev/null
  echo "ray-node: worker $name ($framework, $cpus CPU) joins $address${data:+, dataset at $NODE_DATA}"
}

driver() {
  local address=$1 ip=(); shift
  if [[ ${1:-} == --ip ]]; then ip=(--ip "$2"); shift 2; fi
  [[ ${1:-} == -- ]] && shift
  (($#)) || die "driver: give the command after --"
  if [[ -z ${RAY_NODE_ISOLATED:-} ]]; then
    # On one machine the containers' Ray processes are in this machine's process table,
    # and a driver attaches to a node it finds there (the head first). A PID namespace
    # of its own shows it only the node started here, as a separate machine would.
    local userns=(); [[ $(id -u) -eq 0 ]] || userns=(--user --map-root-user)
    RAY_NODE_ISOLATED=1 exec unshare "${userns[@]}" --pid --fork --mount-proc \
      bash "$SELF" driver "$address" "${ip[@]}" -- "$@"
  fi
  local temp; temp=$(mktemp -d /tmp/qhd.XXXXXX)  # short: Ray's socket paths cap at 107 bytes
  local ray_bin; ray_bin=$(dirname "$PYTHON")/ray
  # The images' Python is Debian's 3.11.2: Ray would refuse any other patch release.
  export RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL=minor
  local agent; agent=$("$PYTHON" -c \
    'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
  ((${#ip[@]} == 0)) || ip=(--node-ip-address "${ip[1]}")
  "$ray_bin" start --address "$address" --num-cpus 0 --temp-dir "$temp" --disable-usage-stats \
    --dashboard-agent-listen-port "$agent" --object-store-memory "$OBJECT_STORE_BYTES" \
    "${ip[@]}" >"$temp/start.log" 2>&1 \
    || { cat "$temp/start.log" >&2; die "driver: this machine could not join $address"; }
  local status=0
  "$@" || status=$?
  "$ray_bin" stop >/dev/null 2>&1 || true  # in this PID namespace: only the node above
  rm -rf "$temp"
  return $status
}

cmd=${1:-}
shift || true
case $cmd in
  build | driver) "$cmd" "$@" ;;
  head | worker) "start_$cmd" "$@" ;;
  *) die "usage: ray-node.sh build|head|worker|driver ... (see the top of this file)" ;;
esac
