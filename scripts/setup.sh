#!/usr/bin/env bash
# Create .venv and install the harness with both framework runners (and, with --dev,
# the test tools). Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="pytorch,tensorflow,docker"
# --dev adds the test tools and Ray (the Ray tests start a real local cluster).
[[ "${1:-}" == "--dev" ]] && extras="$extras,dev,ray"

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: $python is missing or older than 3.11; install Python 3.11 or 3.12, or set PYTHON=" >&2
  exit 2
fi
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch==2.13.0 is pinned: on a machine without a local CPU wheel pip fetches the
# CUDA build from PyPI (several GB). For a CPU-only laptop, add
# --extra-index-url https://download.pytorch.org/whl/cpu to PIP_EXTRA_INDEX_URL.
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"
echo "setup: .venv ready ($(.venv/bin/python -c 'import harness; print("harness", harness.__version__)'))"
