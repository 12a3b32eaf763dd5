#!/usr/bin/env bash
# Prepare, here (with PyPI and the shared data), what a device call carries:
#   .whl/   wheels of invprob's pure-Python dependencies that the device image lacks, for its
#           Python 3.12 (the image has torch, torchvision, numpy, scipy, matplotlib, safetensors 0.8,
#           huggingface_hub 1.33, regex, filelock, h5py, einops, torchmetrics, tqdm, pyyaml, pillow,
#           requests: what these wheels need besides each other; nothing can be fetched there);
#   .data/  copies of the named folders of $INVPROB_DATA (e.g. train400 set12).
# Both are ignored by git (.git/info/exclude). From the repository root:
#   INVPROB_DATA=/path/to/shared/data bash benchmarks/gpu/prepare.sh [FOLDER ...]
# then name .whl and .data in the call's `carry`, start its command with
# `source benchmarks/gpu/device_env.sh`, and check the size first (benchmarks/gpu/tree.sh size .whl .data).
# The versions are those the tests pass with here.
set -euo pipefail
PY=${PY:-python3}
EXCLUDE=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$EXCLUDE")"
if [ -s "$EXCLUDE" ] && [ -n "$(tail -c1 "$EXCLUDE")" ]; then echo >> "$EXCLUDE"; fi
for ignored in /.whl/ /.data/; do grep -qxF "$ignored" "$EXCLUDE" 2>/dev/null || echo "$ignored" >> "$EXCLUDE"; done
mkdir -p .whl
$PY -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl diffusers==0.42.1 deepinv==0.5.0 natsort==8.4.0 importlib_metadata==10.2.0 zipp==4.1.2 \
    hydra-core==1.3.8 omegaconf==2.3.1
# omegaconf needs antlr4-python3-runtime 4.9.*, published as source only: build its (pure-Python) wheel here.
$PY -m pip wheel --quiet --no-deps -w .whl antlr4-python3-runtime==4.9.3
for folder in "$@"; do
  [ -d "${INVPROB_DATA:?set INVPROB_DATA to the shared data folder}/$folder" ] \
      || { echo "prepare.sh: no folder $folder in $INVPROB_DATA" >&2; exit 2; }
  mkdir -p .data && rm -rf ".data/$folder" && cp -r --no-preserve=mode "$INVPROB_DATA/$folder" ".data/$folder"
done
du -sh .whl .data 2>/dev/null || true
