#!/usr/bin/env bash
# The README's test command: set up .venv with the dev tools, then run the test suite.
# Extra arguments go to pytest (e.g. -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
exec .venv/bin/pytest "$@"
