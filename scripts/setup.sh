#!/usr/bin/env bash
# Installs what Cadenza needs on Debian/Ubuntu: apt packages, a .venv with the Python packages.
# Usage: scripts/setup.sh [--dev]   (--dev adds the test tools). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PY="${PYTHON:-python3}"

# libopus0: discord.py encodes voice to Opus with the system library (/play, /party)
apt_pkgs=(fluidsynth libfluidsynth3 fluid-soundfont-gm libopus0)
# MP3s are encoded in-process (lameenc); only the tests need ffmpeg, to decode them back
# PostgreSQL: the tests start their own server (tests/pg_server.py) to run the store against it
if [ "${1:-}" = "--dev" ]; then apt_pkgs+=(ffmpeg postgresql); fi
# Debian's own python3 needs python3-venv for `python3 -m venv`
if ! "$PY" -c "import ensurepip" >/dev/null 2>&1; then apt_pkgs+=(python3-venv); fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing apt packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
extra=""
# Ray Serve comes with the test tools (its tests start a local cluster), or when CADENZA_SERVE
# says this machine runs gateways or workers on it
if [ "${1:-}" = "--dev" ]; then extra="[dev]";
elif [ -n "${CADENZA_SERVE:-}" ]; then extra="[serve]"; fi
# torch is pinned in pyproject.toml (2.13.0, CPU build from local disk here): a bare `torch`
# would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}" 2>&1 \
  | grep -v -E "^WARNING: Location|is ignored: it is neither" >&2 || true
# Byte-compile our own sources once: where PYTHONDONTWRITEBYTECODE is set (CI, some sandboxes)
# every start would compile them again, ~0.1-0.2 s of each `cadenza compose`.
.venv/bin/python -m compileall -q bot models >/dev/null || true
.venv/bin/python -c "import cadenza.cli, cadenza.models.registry, torch, fluidsynth, discord, pretty_midi, lameenc, nacl, davey, \
miniaudio, soxr, sqlalchemy, asyncpg" \
  || { echo "setup: Python packages failed to install" >&2; exit 1; }
if [ -n "$extra" ]; then
  .venv/bin/python -c "import ray.serve" \
    || { echo "setup: Ray Serve (ray[serve]) failed to install" >&2; exit 1; }
fi
