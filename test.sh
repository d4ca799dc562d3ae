#!/usr/bin/env bash
# Sets Cadenza up with the test tools (apt + .venv) and runs the linter and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --dev
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
