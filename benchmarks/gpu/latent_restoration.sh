#!/usr/bin/env bash
# The latent-against-pixel table (benchmarks/results/latent_restoration.md) on one GPU, in one
# device call. From the repo root:
#   OUT=/tmp/out INVPROB_DATA=/path/to/shared/data bash benchmarks/gpu/latent_restoration.sh
# then copy $OUT/latent_restoration.{json,md} into benchmarks/results/. All five held-apart slices,
# the mean of 4 samples each; resumable (a cut-short call keeps its finished cells; call again).
# On a 2-core CPU one slice (2 samples) takes ReSample 6-7 min per task (9018 decoder calls, each
# with a backward pass, per sample) and PSLD 2.5 min; five slices x 4 samples: the GPU. The call
# loads brain-mri and brain-mri-latent and reads mri_brain_images (benchmarks/gpu/README.md).
set -euo pipefail
PY=${PY:-python3}
mkdir -p "$OUT"
timeout "${BUDGET:-560}" $PY benchmarks/latent_restoration.py --device cuda --images 5 --samples 4 \
    --json "$OUT/latent_restoration.json" --note "one GPU, alone" || echo "stopped by the budget: call again to resume"
