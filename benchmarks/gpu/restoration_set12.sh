#!/usr/bin/env bash
# The GPU cells of benchmarks/results/restoration_set12.md, one device call per stage list. From the repo root:
#   OUT=/tmp/out INVPROB_DATA=/path/to/shared/data [STAGES="base enkg1024 enkg2048"] bash benchmarks/gpu/restoration_set12.sh
# then, on any machine, merge them into the committed table:
#   python benchmarks/restoration_set12.py --merge-from $(ls $OUT/*/restoration_set12.json | grep -v /check/)
# STAGES (default "base"; ENKG_1024=1 still appends enkg1024):
#   base: two processes share the GPU, each merging into its own copy of the results JSON
#         (rewritten after every cell, so a run cut short keeps the cells it finished):
#     enkg:  EnKG, 512 particles x 20 steps, on the four tasks, inpainting first;
#     paper: the paper-budget (1000-step) cells the CPU table left empty;
#     check: one CPU cell re-run on the GPU (DPS 250 steps, 70 % inpainting; 22.98 dB on the CPU),
#            to show the device does not change the numbers (not merged);
#   enkg1024: EnKG with the official FFHQ ensemble, 1024 particles, on the two inpainting tasks;
#   enkg2048: EnKG with the released default ensemble, 2048 particles, on 70 % random inpainting,
#             then the 1024-particle box-inpainting cell enkg1024 left empty (≈ 5 + 2.5 min on an H200);
#   enkg-steps: EnKG with 512 particles and 30 steps (2.1x the calls of 20) on box inpainting:
#               more steps instead of more particles (≈ 3 min);
#   peers: TDS with the official 4 particles (48 rows x 100 backpropagated steps per task) and
#          deepinv's DPS at 250 steps, all tasks (the committed cells ran on the CPU, 2-4 min each;
#          this stage re-runs them on the GPU).
# BUDGET caps the wall seconds of the two processes (a device call may run 600 s); MAX_BATCH
# (optional) caps the images per network call (Prior.max_batch), for ensembles beyond one call.
set -uo pipefail
PY=${PY:-python3}
BUDGET=${BUDGET:-450}
export PYTHONUNBUFFERED=1
bench() {  # name, then restoration_set12.py arguments
  local name=$1; shift
  mkdir -p "$OUT/$name"
  [ -f "$OUT/$name/restoration_set12.json" ] || cp benchmarks/results/restoration_set12.json "$OUT/$name/"
  $PY benchmarks/restoration_set12.py --device cuda --merge --results "$OUT/$name" ${MAX_BATCH:+--max-batch $MAX_BATCH} "$@"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY - <<'PYEOF'
import time, torch
from invprob.registry import get_prior
print("torch", torch.__version__, torch.cuda.get_device_name())
prior = get_prior("natural-gray").to("cuda")
with torch.no_grad():
    for b in (12, 6144):  # one measurement per image (DPS-like rows); EnKG's 12 x 512 particles
        x, s = torch.randn(b, 1, 64, 64, device="cuda"), torch.full((b,), 1.0, device="cuda")
        for _ in range(2):
            prior.denoise(x, s)
        torch.cuda.synchronize(); t = time.perf_counter()
        for _ in range(5):
            prior.denoise(x, s)
        torch.cuda.synchronize(); dt = (time.perf_counter() - t) / 5
        print(f"natural-gray denoiser, batch {b} x 64^2, fp32: {dt * 1e3:.1f} ms per call, {b / dt:.0f} images/s")
print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
PYEOF
export -f bench; export PY OUT
STAGES=${STAGES:-base}
[ "${ENKG_1024:-0}" = 1 ] && STAGES="$STAGES enkg1024"
for stage in $STAGES; do
  case $stage in
    base)
      timeout "$BUDGET" bash -c '
        bench check --tasks "inpainting 70% random" --solvers "DPS (250 steps)"
        bench paper --tasks "deblur (Gaussian)" "4x SR (bicubic)" --solvers "DPS (paper: 1000 steps)" "RED-Diff (1000 steps)"
        bench paper --tasks "4x SR (bicubic)" "inpainting 70% random" --solvers "MCG (paper: 1000 steps)"
        bench paper --tasks "inpainting box" --solvers "RED-Diff (1000 steps)"
      ' >"$OUT/paper.log" 2>&1 &
      timeout "$BUDGET" bash -c '
        for task in "inpainting 70% random" "inpainting box" "deblur (Gaussian)" "4x SR (bicubic)"; do
          bench enkg --tasks "$task" --solvers "EnKG (512 particles, 20 steps)"
        done
      ' >"$OUT/enkg.log" 2>&1
      wait ;;
    enkg1024)
      timeout "$BUDGET" bash -c '
        for task in "inpainting 70% random" "inpainting box"; do
          bench enkg1024 --tasks "$task" --solvers "EnKG (1024 particles, 20 steps)"
        done
      ' >"$OUT/enkg1024.log" 2>&1 ;;
    enkg2048)
      timeout "$BUDGET" bash -c '
        bench enkg2048 --tasks "inpainting 70% random" --solvers "EnKG (2048 particles, 20 steps)"
        bench enkg2048 --tasks "inpainting box" --solvers "EnKG (1024 particles, 20 steps)"
      ' >"$OUT/enkg2048.log" 2>&1 ;;
    enkg-steps)
      timeout "$BUDGET" bash -c '
        bench enkg-steps --tasks "inpainting box" --solvers "EnKG (512 particles, 30 steps)"
      ' >"$OUT/enkg-steps.log" 2>&1 ;;
    peers)
      timeout "$BUDGET" bash -c '
        bench peers --solvers "TDS (paper: 4 particles, 100 steps)" "deepinv DPS (weight 1, 250 steps)"
      ' >"$OUT/peers.log" 2>&1 ;;
    *) echo "unknown stage $stage (base, enkg1024, enkg2048, enkg-steps, peers)" >&2; exit 2 ;;
  esac
done
rm -f "$OUT"/*/restoration_set12.md  # the tables are re-rendered after the merge
tail -n 30 "$OUT"/*.log
