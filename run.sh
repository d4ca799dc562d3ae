#!/usr/bin/env bash
# Sets Cadenza up (apt + .venv) and starts it: the Discord bot when CADENZA_TOKEN is set,
# otherwise the offline console (type /help). Extra arguments go to `cadenza run`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/cadenza run "$@"
