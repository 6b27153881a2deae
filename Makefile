# clinkd — set-up and the two README commands.
#   make demo   install everything into .venv, then run the main job (clinkd demo)
#   make test   install everything into .venv, then run the default test suite.
#   make lint   ruff (lint + format check) and mypy, as CI runs them. Chromium for the browser
#               test comes from scripts/install_browser.sh, which needs root or passwordless sudo; without
#               them the browser test is skipped (saying how to enable it), except under CI=true, where
#               a browser that cannot be installed fails the run.
# Both are idempotent: the install step re-runs only when pyproject.toml changes.
#
# TORCH: the torch requirement installed first and kept by a constraints file. The default is the CPU
# build these machines carry. With a GPU, pass the build matching your CUDA, e.g.
#   make demo TORCH="torch==2.5.1"  (plus TORCH_INDEX=https://download.pytorch.org/whl/cu124)
# or TORCH=system to reuse a torch already installed in the Python that creates the venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
DEMO_OUT ?= runs/demo
PY := $(VENV)/bin/python
STAMP := $(VENV)/.clinkd-installed

.PHONY: install demo test lint bench clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
ifeq ($(TORCH),system)
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -c "import torch; print('using system torch', torch.__version__)"
	$(PY) -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(VENV)/constraints.txt
else
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
	echo "$(TORCH)" > $(VENV)/constraints.txt
endif
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -e ".[test,lint]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/clinkd demo --out $(DEMO_OUT)

test: install
	bash scripts/install_browser.sh
	$(PY) -m pytest -q

# lint: ruff (lint and format check) and mypy, configured in pyproject.toml; CI runs it before `make test`.
lint: install
	$(VENV)/bin/ruff check src tests scripts benchmarks
	$(VENV)/bin/ruff format --check src tests scripts benchmarks
	$(VENV)/bin/mypy

bench: install
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
