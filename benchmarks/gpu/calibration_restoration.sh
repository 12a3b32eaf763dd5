#!/usr/bin/env bash
# Calibrated against paper presets on real images at the papers' budgets (DPS 1000 steps,
# DAPS-1K): benchmarks/calibration_restoration.py --budget paper, in one device call. From the
# repo root:
#   OUT=/tmp/out INVPROB_DATA=/path/to/shared/data bash benchmarks/gpu/calibration_restoration.sh
# then merge: copy $OUT/calibration_restoration.json over benchmarks/results/ (its cells are keyed
# by task, solver and budget, so the CPU "reduced" cells and these "paper" cells live in one file
# when the file is copied from benchmarks/results/ into $OUT first). Resumable: a call cut short
# keeps its finished cells; call again.
set -euo pipefail
PY=${PY:-python3}
mkdir -p "$OUT"
[ -f "$OUT/calibration_restoration.json" ] || cp benchmarks/results/calibration_restoration.json "$OUT/" 2>/dev/null || true
timeout "${BUDGET:-560}" $PY benchmarks/calibration_restoration.py --budget paper --device cuda --quiet \
    --json "$OUT/calibration_restoration.json" --note "one GPU, alone" || echo "stopped by the budget: call again to resume"
