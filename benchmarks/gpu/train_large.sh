#!/usr/bin/env bash
# natural-gray-large: the larger natural-image prior of issue #25, in one device call. A 14.4 M-parameter
# EDM UNet2DModel (64/128/256 channels, two res blocks per level; float16 storage, 29 MB) on random 64x64
# crops of train400 (Set12 held apart) with flips; batch 256, Adam lr 3e-4 after a 500-step warm-up,
# EMA 0.999, bf16 autocast, torch.compile. The size, batch and rate are this recipe's choices (not tuned
# here). It trains for MINUTES, exports the EMA in float16, packs the export into $OUT in 15 MiB parts,
# then scores it under DnCNN's Set12 protocol (benchmarks/priors.py --dncnn, results into $OUT).
#
# Here, before the call (the tree must stay under 64 MiB):
#   INVPROB_DATA=/path/to/shared/data bash benchmarks/gpu/prepare.sh train400 set12
#   bash benchmarks/gpu/tree.sh drop invprob/weights/mnist-flow invprob/weights/brain-mri \
#       invprob/weights/brain-mri-latent invprob/weights/brain-mri-flow invprob/weights/mnist
#   bash benchmarks/gpu/tree.sh size .whl .data          # about 40 MiB
# The call (carry [".whl", ".data"], timeout 600):
#   source benchmarks/gpu/device_env.sh && INVPROB_DATA=.data bash benchmarks/gpu/train_large.sh
# After it: bash benchmarks/gpu/tree.sh restore, then unpack the prior here:
#   mkdir -p export && cat <files_at>/natural-gray-large.tar.part* | tar -C export -xf -
#
# Continuing: a second call on the same (still warm) machine resumes runs/natural-gray-large from its
# checkpoint (the same batches and noise; GPU kernels are not bit-deterministic). A fresh machine starts
# from scratch, or with INIT=<an unpacked export of an earlier call> from its weights with a new
# optimiser (TrainConfig.init_from: a warm start, not an exact resume). Carrying an export (27.5 MiB)
# needs the natural-gray weights dropped too and SHIPPED=false (score only the new run): 51 MiB in all.
# MINUTES (default 7), BATCH, LR, DEVICE (cuda), AMP (true) and COMPILE (true) override the recipe;
# a compile that fails falls back to eager for the minutes left. Outputs in $OUT: train.log,
# priors_dncnn.{json,md}, natural-gray-large_{loss,samples}.png, natural-gray-large.tar.part00, part01.
set -euo pipefail
PY=${PY:-python3}
NAME=natural-gray-large
RUN=runs/$NAME
DEVICE=${DEVICE:-cuda}
MINUTES=${MINUTES:-7}
: "${OUT:?set OUT}"
mkdir -p "$OUT" export
settings=(data=train400 holdout=0 image_size=64 "batch_size=${BATCH:-256}" flips=true "lr=${LR:-3e-4}" lr_warmup=500
          "block_out_channels=[64,128,256]" layers_per_block=2 "device=$DEVICE" "amp=${AMP:-true}" quiet=true
          num_steps=100000000 checkpoint_every=2000 seed=0)
if [ ! -f "$RUN/trainer.pt" ] && [ -n "${INIT:-}" ]; then settings+=("init_from=$INIT"); fi
t0=$(date +%s)
if ! $PY -m invprob.app.cli train "out=$RUN" "${settings[@]}" "max_minutes=$MINUTES" "compile=${COMPILE:-true}" \
    2>&1 | tee "$OUT/train.log"; then
  [ "${COMPILE:-true}" = true ] || exit 1
  left=$($PY -c "print(max(0.5, $MINUTES - ($(date +%s) - $t0) / 60))")
  echo "train_large: the compiled run failed; training eagerly for $left min" | tee -a "$OUT/train.log"
  $PY -m invprob.app.cli train "out=$RUN" "${settings[@]}" "max_minutes=$left" compile=false 2>&1 | tee -a "$OUT/train.log"
fi
$PY -c "from invprob.training import export_prior; export_prior('$RUN', 'export/$NAME', dtype='float16')"
tar -C export -cf - "$NAME" | split -b 15m -d - "$OUT/$NAME.tar.part"  # packed first: scoring may fail
for f in loss samples; do cp "export/$NAME/$f.png" "$OUT/${NAME}_$f.png" 2>/dev/null || true; done
steps=$($PY -c "import json; print(json.load(open('export/$NAME/config.json'))['training']['steps_done'])")
echo "$NAME: $steps steps, $(( $(date +%s) - t0 )) s wall" | tee -a "$OUT/train.log"
shipped=(); [ "${SHIPPED:-true}" = true ] || shipped=(--no-shipped)
$PY benchmarks/priors.py --dncnn --device "$DEVICE" --results "$OUT" "${shipped[@]}" \
    --exported "natural-gray=export/$NAME" >> "$OUT/train.log" 2>&1 || echo "train_large: scoring failed (see train.log)"
tail -8 "$OUT/train.log"
ls -l "$OUT"
