#!/usr/bin/env bash
# Train the natural-gray, brain-mri, mnist-flow, natural-gray-flow and brain-mri-flow priors (the recipes behind
# invprob/weights/*/config.json "training"). Run from the repository root:
#   INVPROB_DATA=/path/to/shared/data OUT=/tmp/out bash benchmarks/gpu/train_priors.sh
# RECIPE=gpu (default): the shipped priors, one GPU, bf16 autocast, 3.6 M-parameter UNet.
# RECIPE=cpu: the 2-core-CPU recipe of issue #5 (natural-gray 60 min, brain-mri 45 min; a smaller
#   16/32/64 UNet and smaller batches so that the budget buys thousands of steps), and the shipped
#   brain-mri-latent (ONLY=latent: its autoencoder 15 min, then its latent UNet 35 min).
# SCALE multiplies every time budget (SCALE=0.02 is a smoke test). ONLY=<name> trains one prior.
# Each prior is exported with invprob.training.export_prior and packed as $OUT/<name>.tar.
set -euo pipefail
RECIPE=${RECIPE:-gpu}
SCALE=${SCALE:-1}
PY=${PY:-python3}
ONLY=${ONLY:-}
if [ "$ONLY" = latent ]; then ONLY=; LATENT_ONLY=1; fi
if [ "$RECIPE" = cpu ]; then DEVICE=${DEVICE:-cpu}; AMP=${AMP:-false}; else DEVICE=${DEVICE:-cuda}; AMP=${AMP:-true}; fi
mins() { $PY -c "print($1 * $SCALE)"; }
run() {  # name, then train arguments
  local name=$1; shift
  if [ -n "$ONLY" ] && [ "$ONLY" != "$name" ]; then return; fi
  local t0=$(date +%s)
  rm -rf "runs/$name" "export/$name"
  $PY -m invprob.app.cli train out="runs/$name" device="$DEVICE" amp="$AMP" quiet=true num_steps=1000000 \
      checkpoint_every=1000000 seed=0 "$@" 2>&1 | tail -3
  $PY -c "from invprob.training import export_prior; export_prior('runs/$name', 'export/$name')"
  echo "$name: $(( $(date +%s) - t0 )) s wall, steps $($PY -c "import json; print(json.load(open('export/$name/config.json'))['training']['steps_done'])")"
  tar -C export -cf "$OUT/$name.tar" "$name"
}
latent_recipe() {
  # brain-mri-latent, the shipped latent prior: an AutoencoderKL (f = 4, 2 latent channels) on 32x32
  # crops of slices 1-35 resized to 128x128, then EDM on its latents of 64x64 crops; 36-40 held apart.
  run brain-mri-latent-ae data=brain-mri holdout=5 resize=128 image_size=32 batch_size=16 flips=true lr=5e-4 \
      objective=autoencoder latent_channels=2 block_out_channels=[16,32,32] layers_per_block=1 \
      max_minutes="$(mins 15)"
  run brain-mri-latent data=brain-mri holdout=5 resize=128 image_size=64 batch_size=32 flips=true lr=4e-4 \
      objective=latent-edm autoencoder=runs/brain-mri-latent-ae block_out_channels=[32,64,64] layers_per_block=1 \
      max_minutes="$(mins 35)"
}
mkdir -p export "$OUT"
if [ -n "${LATENT_ONLY:-}" ]; then latent_recipe; exit 0; fi  # the same settings on either device
if [ "$RECIPE" = cpu ]; then
  # Same data, crops and objective as the GPU recipe; network and batch sized for 2 cores
  # (the CPU-trained mnist prior's 16/32/64 UNet, one layer per block).
  run natural-gray data=train400 holdout=0 image_size=64 batch_size=32 flips=true lr=4e-4 \
      block_out_channels=[16,32,64] layers_per_block=1 max_minutes="$(mins 60)"
  run brain-mri data=brain-mri holdout=5 resize=128 image_size=96 batch_size=16 flips=true lr=4e-4 \
      block_out_channels=[16,32,64] layers_per_block=1 max_minutes="$(mins 45)"
  # The shipped flow priors (issue #19): the same data, crops and network as the CPU EDM recipe
  # above, rectified-flow objective, shorter budgets.
  run brain-mri-flow data=brain-mri holdout=5 resize=128 image_size=96 batch_size=16 flips=true lr=4e-4 \
      objective=flow block_out_channels=[16,32,64] layers_per_block=1 max_minutes="$(mins 35)"
  run natural-gray-flow data=train400 holdout=0 image_size=64 batch_size=32 flips=true lr=4e-4 \
      objective=flow block_out_channels=[16,32,64] layers_per_block=1 max_minutes="$(mins 40)"
  [ -n "$ONLY" ] || latent_recipe
  exit 0
fi
# Natural grayscale images: 64x64 patches of train400 (all 400 images; Set12 is the held-apart test set).
run natural-gray data=train400 holdout=0 image_size=64 batch_size=128 flips=true lr=4e-4 \
    block_out_channels=[32,64,128] layers_per_block=2 max_minutes="$(mins 3.5)"
# Brain MRI: slices 1-35 resized to 128x128, random 96x96 crops; slices 36-40 held apart.
run brain-mri data=brain-mri holdout=5 resize=128 image_size=96 batch_size=64 flips=true lr=4e-4 \
    block_out_channels=[32,64,128] layers_per_block=2 max_minutes="$(mins 2.0)"
# MNIST, rectified flow: test images 0-9499 (9500-9999 held apart, as for the EDM prior).
run mnist-flow data=mnist holdout=500 image_size=32 batch_size=128 objective=flow lr=4e-4 \
    block_out_channels=[32,64,128] layers_per_block=2 max_minutes="$(mins 1.5)"
