# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each creates .venv with pip if missing and installs the project with its extras.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# PyTorch is installed first so that pip does not pick a multi-GB build by itself.
# Override for your platform, e.g. `make test TORCH_SPEC="torch torchvision"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=
# The real data the tests and benchmarks read (the package itself only looks at $INVPROB_DATA
# and the user's cache): the shared folder beside this checkout, when there is one.
ifneq ($(wildcard ../shared/data),)
INVPROB_DATA ?= $(abspath ../shared/data)
export INVPROB_DATA
endif

.PHONY: setup demo test test-slow benchmark docs clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/invprob demo

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

benchmark: setup
	$(PY) benchmarks/posterior_gmm.py --seed 7 --matched --json benchmarks/results/posterior_gmm_seed7.json

# The documentation site (warnings are errors). The gallery runs every example with --quick;
# `make docs INVPROB_DOCS_QUICK=0` runs them at their defaults (about 5 minutes each on a CPU).
INVPROB_DOCS_QUICK ?= 1
export INVPROB_DOCS_QUICK
docs: setup
	MPLBACKEND=Agg $(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) .pytest_cache
