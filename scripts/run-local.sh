#!/usr/bin/env bash
# The main job on the local embedded stack: bring it up (as many isolated slots as this
# machine holds), run the whole scenario catalogue against it in parallel slots, write the
# evidence and its report, tear it down. Exit status 0 only when every scenario passed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
export HARNESS_RUN_DIR=${HARNESS_RUN_DIR:-.harness/local}
OUT=${HARNESS_OUT:-.harness/runs/$(date -u +%Y%m%dT%H%M%SZ)}
# HARNESS_SCENARIOS="S1 S2" narrows the run; HARNESS_SLOTS=N overrides the slot count.
SCENARIOS=${HARNESS_SCENARIOS:---all}
SLOTS=${HARNESS_SLOTS:-auto}

trap '"$BIN/harness" down' EXIT
"$BIN/harness" up --detach --slots "$SLOTS"
"$BIN/harness" status
"$BIN/harness" validate
status=0
# shellcheck disable=SC2086
# It writes the report of this run too, passed or not: report.html, report.md (+ plots/),
# coverage.json.
"$BIN/harness" run $SCENARIOS --out "$OUT" || status=$?
echo "evidence: $OUT/evidence.json, $OUT/junit.xml"
exit "$status"
