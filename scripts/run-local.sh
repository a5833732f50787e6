#!/usr/bin/env bash
# The main job on the local embedded stack: bring it up (as many isolated slots as this
# machine holds), run the whole scenario catalogue against it in parallel slots, write the
# evidence and its report, tear it down. Exit status 0 only when every scenario passed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
export HARNESS_RUN_DIR=${HARNESS_RUN_DIR:-.harness/local}
OUT=${HARNESS_OUT:-.harness/runs/$(date -u +%Y%m%dT%H%M%SZ)}
# HARNESS_SCENARIOS="S1 S2" narrows the run; HARNESS_SLOTS=N overrides the single-node slot
# count, HARNESS_CLUSTER_SLOTS=N the 3-node cluster slots beside them (the cluster scenarios,
# scenarios/cluster/, run only there): by default what `--slots auto` adds, one beside an explicit
# HARNESS_SLOTS, none when HARNESS_SCENARIOS names no cluster scenario (CL-…).
SCENARIOS=${HARNESS_SCENARIOS:---all}
SLOTS=${HARNESS_SLOTS:-auto}
if [ -n "${HARNESS_CLUSTER_SLOTS:-}" ]; then
    CLUSTER_SLOTS=$HARNESS_CLUSTER_SLOTS
elif [ -n "${HARNESS_SCENARIOS:-}" ] && ! [[ " ${HARNESS_SCENARIOS^^} " =~ [[:space:]]CL- ]]; then
    CLUSTER_SLOTS=0
elif [ "$SLOTS" = auto ]; then
    CLUSTER_SLOTS=auto
else
    CLUSTER_SLOTS=1
fi

trap '"$BIN/harness" down' EXIT
"$BIN/harness" up --detach --slots "$SLOTS" --cluster-slots "$CLUSTER_SLOTS"
"$BIN/harness" status
"$BIN/harness" validate
status=0
# shellcheck disable=SC2086
# It writes the report of this run too, passed or not: report.html, report.md (+ plots/),
# coverage.json.
"$BIN/harness" run $SCENARIOS --out "$OUT" || status=$?
echo "evidence: $OUT/evidence.json, $OUT/junit.xml"
exit "$status"
