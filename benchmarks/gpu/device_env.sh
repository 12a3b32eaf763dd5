# Source on the device machine, from the repository root, first thing in a device call that
# carries .whl (benchmarks/gpu/prepare.sh):   source benchmarks/gpu/device_env.sh
# Installs the carried wheels into /tmp/site and puts them and this checkout on PYTHONPATH (a
# source checkout finds its presets at the repository's top level: invprob.registry.config_dir).
PY=${PY:-python3}
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "device_env: installing .whl failed (was .whl carried?)"; return 1 2>/dev/null || exit 1; }
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
$PY -c "import invprob, diffusers, deepinv, hydra, torch; print('device_env:', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU', 'diffusers', diffusers.__version__)"
