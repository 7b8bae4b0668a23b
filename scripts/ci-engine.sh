# Sourced by the CI tiers (ci-docker-tier.sh, ci-cuda-tier.sh): a Docker engine that
# answers, or one started here. Not run on its own.

engine_answers() {
  .venv/bin/python -c 'import docker; docker.from_env().ping()' 2>/dev/null
}

# start_engine LOG [PACKAGE...]: as root, install docker.io (where dockerd is missing)
# and the PACKAGEs from Debian, start dockerd logging to LOG and wait for it to answer.
# Sets ENGINE_PID to the dockerd it started (the caller stops it). On failure returns 1
# with the reason, worded for "tier X: SKIPPED, <reason>", in ENGINE_PROBLEM.
start_engine() {
  local log=$1
  shift
  local packages=("$@")
  ENGINE_PID=""
  ENGINE_PROBLEM=""
  if [[ $(id -u) -ne 0 ]]; then
    ENGINE_PROBLEM="no Docker engine answers and starting one needs root"
    return 1
  fi
  command -v dockerd >/dev/null || packages+=(docker.io)
  if (( ${#packages[@]} )) \
    && ! (apt-get update -qq && apt-get install -y -qq "${packages[@]}" >/dev/null); then
    ENGINE_PROBLEM="${packages[*]} could not be installed from Debian's packages"
    return 1
  fi
  dockerd >"$log" 2>&1 &
  ENGINE_PID=$!
  for _ in $(seq 1 60); do [[ -S /var/run/docker.sock ]] && break; sleep 1; done
  engine_answers && return 0
  ENGINE_PROBLEM="dockerd did not come up (see $log)"
  return 1
}
