#!/usr/bin/env bash
# The full setting of benchmarks/speed.py on one GPU, alone, in one device call (target: under
# 8 minutes). From the repo root:
#   OUT=/tmp/out INVPROB_DATA=/path/to/shared/data bash benchmarks/gpu/speed.sh
# then copy $OUT/speed_full.{json,md} and $OUT/speed_full_pareto.png into benchmarks/results/.
set -euo pipefail
PY=${PY:-python3}
mkdir -p "$OUT"
timeout "${BUDGET:-540}" $PY benchmarks/speed.py --full --device cuda --out "$OUT"
