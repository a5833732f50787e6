#!/usr/bin/env bash
# The main job on the local embedded stack: bring it up, show it, tear it down.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
export HARNESS_RUN_DIR=${HARNESS_RUN_DIR:-.harness/local}

trap '"$BIN/harness" down' EXIT
"$BIN/harness" up --detach
"$BIN/harness" status
