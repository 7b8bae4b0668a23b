#!/usr/bin/env bash
# The CUDA-image tier, for machines without a GPU: build both CUDA images (`harness images
# build --cuda`: FROM the local Debian base, the frameworks' hash-locked CUDA wheels) and
# prove in the containers what can be proved without a GPU:
#   * torch reports a CUDA build and its cuDNN; TensorFlow reports it was built with CUDA
#     (tf.test.is_built_with_cuda, tf.sysconfig.get_build_info); libcudart, libcudnn and
#     libcublas from the nvidia wheels load with ctypes (harness/images/cuda_probe.py, run
#     by the build itself and again by tests/test_cuda_images_docker.py);
#   * the CPU smoke study, run in the CPU images, reruns in the CUDA images
#     (`harness reproduce` with HARNESS_IMAGE_VARIANT=cuda) with every model file of both
#     frameworks bit-identical.
# Both CUDA images' ids and CUDA/cuDNN versions are recorded in a copy of the image lock
# named by $HARNESS_IMAGE_LOCK (the tracked images/lock.toml is never written).
#
# Needs about 25 GB free for the engine's images; the first build downloads about 8 GB of
# wheels. Exit 0 with "tier cuda: SKIPPED, <why>" when this machine cannot run it;
# non-zero when the tier ran and failed. Prints "tier cuda: TIME <step> <s>" per step.
set -euo pipefail
cd "$(dirname "$0")/.."

NEED_GB=${HARNESS_CUDA_TIER_NEED_GB:-25}  # GB free the engine needs (override to test the skip)
skip() { echo "tier cuda: SKIPPED, $1"; exit 0; }
fail() { echo "tier cuda: FAILED, $1"; exit 1; }
tier_start=$(date +%s)
step_start=$tier_start
ran=()
step() {  # step NAME: print how long the step since the last call took
  local now; now=$(date +%s)
  echo "tier cuda: TIME $1 $(( now - step_start )) s"
  ran+=("$1")
  step_start=$now
}
work=$(mktemp -d)
results=""
ENGINE_PID=""  # the dockerd this tier started, if any (start_engine sets it)
passed=0
cleanup() {
  if [[ -n "$results" ]]; then  # a failed run's results stay for reading
    if (( passed )); then rm -rf "$results"; else echo "tier cuda: results kept in $results"; fi
  fi
  rm -rf "$work"
  if [[ -n "$ENGINE_PID" ]]; then
    kill "$ENGINE_PID" 2>/dev/null || true
    wait "$ENGINE_PID" 2>/dev/null || true
    echo "tier cuda: stopped the engine it started (pid $ENGINE_PID)"
  fi
  echo "tier cuda: ran: ${ran[*]:-nothing}"
}
trap cleanup EXIT

# -- an engine: the one that answers, or one started here (root only) ---------------------
source scripts/ci-engine.sh
if ! engine_answers; then
  # The log outlives $work: a failure names it.
  start_engine "$(mktemp -t dockerd.XXXXXX.log)" || skip "$ENGINE_PROBLEM"
fi
docker_root=$(docker info --format '{{.DockerRootDir}}' 2>/dev/null || echo /var/lib/docker)
free_gb=$(( $(df --output=avail -k "$docker_root" 2>/dev/null | tail -1 || echo 0) / 1048576 ))
(( free_gb >= NEED_GB )) \
  || skip "only $free_gb GB free under $docker_root; the CUDA images need about $NEED_GB GB"
echo "tier cuda: engine $(docker version --format '{{.Server.Version}}'), $free_gb GB free under $docker_root"
step engine

# -- images ----------------------------------------------------------------------------
if ! docker image inspect quant-harness/cpu-base:bookworm >/dev/null 2>&1; then
  [[ $(id -u) -eq 0 ]] || skip "the CPU base is absent and debootstrap needs root"
  if ! command -v debootstrap >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null) \
      || skip "debootstrap could not be installed from Debian's packages"
  fi
fi
bash scripts/build-cpu-base.sh

version=$(.venv/bin/python -c 'import harness_contract; print(harness_contract.__version__)')
runner_of() { [[ $1 == pytorch ]] && echo torch_runner || echo tf_runner; }
sources() {  # sources FRAMEWORK [REF]: digest of the runner sources, in the checkout or image REF
  local list='find harness_contract '"$(runner_of "$1")"' -type f ! -name "*.pyc" ! -path "*/__pycache__/*" -print0 | LC_ALL=C sort -z | xargs -0 sha256sum'
  if [[ -n "${2:-}" ]]; then
    docker run --rm --network none --entrypoint sh -w /opt/quant-harness "$2" -c "$list" | sha256sum
  else
    rm -rf "$work/src" && mkdir -p "$work/src"  # the image's layout: both folders side by side
    cp -r shared/harness_contract "images/$1/$(runner_of "$1")" "$work/src/"
    (cd "$work/src" && sh -c "$list" | sha256sum)
  fi
}
# The CPU images the smoke study runs in first: reused when they hold this checkout's
# sources (CI's docker tier leaves them so), else built (from the build cache if it can).
stale=()
for fw in pytorch tensorflow; do
  ref="quant-harness/$fw:$version"
  if ! docker image inspect "$ref" >/dev/null 2>&1 || [[ $(sources "$fw" "$ref") != $(sources "$fw") ]]; then
    stale+=("$fw")
  fi
done
if (( ${#stale[@]} )); then
  echo "tier cuda: building the CPU images of ${stale[*]} (absent or not this checkout's sources)"
  .venv/bin/harness images build --base quant-harness/cpu-base:bookworm "${stale[@]}"
else
  echo "tier cuda: the CPU images hold this checkout's sources, reused"
fi
step build-cpu

cp images/lock.toml "$work/lock.toml"
tracked_lock=$(sha256sum images/lock.toml)
export HARNESS_IMAGE_LOCK="$work/lock.toml"
for fw in pytorch tensorflow; do
  .venv/bin/harness images build --cuda --record "$fw"
  step "build-cuda-$fw"
done
[[ $(sha256sum images/lock.toml) == "$tracked_lock" ]] \
  || fail "the build wrote the tracked images/lock.toml"
for fw in pytorch tensorflow; do  # the same study code in both variants, or no comparison
  [[ $(sources "$fw" "quant-harness/$fw:$version-cuda") == $(sources "$fw" "quant-harness/$fw:$version") ]] \
    || fail "the $fw CUDA and CPU images hold different runner sources (the checkout changed mid-tier?)"
done
.venv/bin/python - "$HARNESS_IMAGE_LOCK" <<'EOF'
import re, subprocess, sys, tomllib
import harness_contract
lock = tomllib.load(open(sys.argv[1], "rb"))
for fw in ("pytorch", "tensorflow"):
    ref = f"quant-harness/{fw}:{harness_contract.__version__}-cuda"  # as $version
    cuda = lock[fw]["cuda"]
    inspect = ["docker", "image", "inspect", "--format"]
    image_id = subprocess.check_output([*inspect, "{{.Id}}", ref], text=True).strip()
    size = int(subprocess.check_output([*inspect, "{{.Size}}", ref], text=True))
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", cuda["image_id"]), f"{fw}: no image id in the lock"
    assert cuda["image_id"] == image_id, f"{fw}: lock {cuda['image_id']} but {ref} is {image_id}"
    labels = subprocess.check_output([*inspect, "{{json .Config.Labels}}", ref], text=True)
    assert f'"io.quant-harness.cudnn":"{cuda["cudnn"]}"' in labels, f"{fw}: cudnn label"
    print(f"tier cuda: lock records {ref} = {image_id}, CUDA {cuda['cuda']}, cuDNN {cuda['cudnn']}, "
          f"{size / 2**30:.1f} GiB")
EOF
step record

# -- in-container checks (no GPU): the probe, labels, non-root, Inductor --------------------
env HARNESS_REQUIRE_CUDA_IMAGES=1 .venv/bin/pytest -q -p no:cacheprovider --all-tiers -m docker \
  tests/test_cuda_images_docker.py
step probe-tests

# -- the CPU smoke study: CPU images, then rerun in the CUDA images, bit for bit ------------
results=$(mktemp -d)
env -u HARNESS_IMAGE_VARIANT .venv/bin/harness compare --backend docker --preset smoke \
  --results "$results" --run-id cpu-images-smoke
.venv/bin/python scripts/check_docker_run.py "$results/cpu-images-smoke"
step smoke-cpu-images

# `harness reproduce` compares each model file by digest and every figure within its
# tolerances: all must match (the .pt2 records torch's release, not the wheel's +cpu or
# +cu130 build label, so the same program saves to the same bytes in both images).
HARNESS_IMAGE_VARIANT=cuda .venv/bin/harness reproduce "$results/cpu-images-smoke" --backend docker \
  || fail "the smoke study in the CUDA images did not reproduce the CPU images' bit for bit"
.venv/bin/python - "$results" <<'EOF'
import json, sys
from pathlib import Path
from harness_contract.metrics import read_metrics

(report,) = Path(sys.argv[1]).glob("*/reproduction.json")
data = json.loads(report.read_text())
rerun = Path(data["rerun"])
problems, exact = [], 0
for fw in data["frameworks"]:
    name = fw["framework"]
    for d in fw["context_differences"]:  # what reproduce says differs around the run
        print(f"tier cuda: {name} {d['field']}: {d['original']} -> {d['rerun']}")
    for v in fw["variants"]:
        for art in v["artifacts"]:
            if art["identical"]:
                exact += 1
            else:
                problems.append(f"{name} {art['file']} differs")
    image = read_metrics(rerun / name / "metrics.json").provenance.image
    if image is None or not (image.tag or "").endswith("-cuda"):
        problems.append(f"{name} reran in {image}, not a -cuda image")
    else:
        print(f"tier cuda: {name} reran in {image.repository}:{image.tag} ({image.id[:19]})")
for line in problems:
    print(f"tier cuda: FAILED, {line}")
if problems or not exact:
    sys.exit(1)
print(f"tier cuda: CPU images vs CUDA images: all {exact} model files bit-identical, every figure equal")
EOF
step smoke-cuda-images

echo "tier cuda: TIME total $(( $(date +%s) - tier_start )) s"
passed=1
echo "tier cuda: passed"
