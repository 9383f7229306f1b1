#!/usr/bin/env bash
# SHA-256 of plan.json for the demo (1 mm) and three 3 mm plans, made with the twinsep
# source in SRC (e.g. a worktree of an older commit): compare two commits' plans byte for
# byte.   usage: scripts/plan_fingerprints.sh SRC OUT   (about 2 minutes on 2 cores)
set -euo pipefail
SRC=$(realpath "$1"); OUT=$(realpath -m "$2")
PY=${PYTHON:-$(dirname "$0")/../.venv/bin/python}
ROSTER=$(realpath "$(dirname "$0")/../examples/roster.yaml")
export PYTHONPATH=$SRC
mkdir -p "$OUT"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$(dirname "$SRC")"
"$PY" -m twinsep demo --out "$T/demo" > "$OUT/demo.log" 2>&1
cp "$T/demo/case/plan.json" "$OUT/demo.plan.json"
"$PY" -m twinsep phantom --out "$T/ph3" --spacing 3 --axial-rotation 60 --dicom > /dev/null 2>&1
"$PY" -m twinsep plan "$T/ph3/ct.nii.gz" --out "$T/c1" --roster "$ROSTER" > "$OUT/c1.log" 2>&1
cp "$T/c1/plan.json" "$OUT/c1.plan.json"
"$PY" -m twinsep plan "$T/ph3/dicom" --out "$T/c2" --keep-phi > "$OUT/c2.log" 2>&1
cp "$T/c2/plan.json" "$OUT/c2.plan.json"
"$PY" -m twinsep plan "$T/ph3/ct.nii.gz" --out "$T/c3" --choose sinus-to-b --stages 2 \
  > "$OUT/c3.log" 2>&1
cp "$T/c3/plan.json" "$OUT/c3.plan.json"
sha256sum "$OUT"/*.plan.json
