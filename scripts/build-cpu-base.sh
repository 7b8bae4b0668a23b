#!/usr/bin/env bash
# Build the local CPU base image the harness images are tested on.
#
# The official CUDA bases cannot be pulled where no registry is reachable, so the
# Dockerfiles take their base as a build argument and tests build them FROM this
# image instead: Debian bookworm (minbase) + python3, venv and pip, made with
# debootstrap and imported with `docker import`.
#
# Usage: scripts/build-cpu-base.sh [--force] [--name NAME] [--mirror URL]
set -euo pipefail

NAME="quant-harness/cpu-base:bookworm"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
FORCE=0

die() { echo "build-cpu-base: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --name) NAME="${2:?--name needs a value}"; shift ;;
    --mirror) MIRROR="${2:?--mirror needs a value}"; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) die "unknown option $1; see --help" ;;
  esac
  shift
done

command -v docker >/dev/null || die "docker CLI not found; install docker.io (apt-get install -y docker.io)"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer; start dockerd and retry"
command -v debootstrap >/dev/null || die "debootstrap not found; install it (apt-get install -y debootstrap)"
[ "$(id -u)" -eq 0 ] || die "debootstrap needs root; rerun with sudo"

# Idempotent: an existing base is kept unless --force asks for a rebuild.
if [ "$FORCE" -eq 0 ] && docker image inspect "$NAME" >/dev/null 2>&1; then
  echo "build-cpu-base: $NAME already exists (use --force to rebuild)"
  exit 0
fi

ROOTFS="$(mktemp -d "${TMPDIR:-/tmp}/cpu-base.XXXXXX")"
trap 'rm -rf "$ROOTFS"' EXIT

start=$(date +%s)
echo "build-cpu-base: debootstrap bookworm from $MIRROR into $ROOTFS"
debootstrap --variant=minbase \
  --include=python3,python3-venv,python3-pip,ca-certificates \
  bookworm "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 \
  || { tail -n 5 "$ROOTFS.log" >&2; die "debootstrap failed (log: $ROOTFS.log)"; }

# pip inside containers must trust the same CAs the host does (the host may sit
# behind an intercepting proxy whose CA only the host bundle holds).
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
# Keep the image small: apt lists and caches are not needed at run time.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*

tar -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap bookworm minbase + python3 (scripts/build-cpu-base.sh)" \
  - "$NAME" >/dev/null
rm -f "$ROOTFS.log"
echo "build-cpu-base: built $NAME in $(( $(date +%s) - start )) s"
