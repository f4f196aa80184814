# The two set-up commands: `make run` (install, then the 60 example pairs on a local Ray, then
# the report) and `make test`. SHARED is the folder holding data/dpst and weights. The install ends by
# compiling the kernels into numba's cache (`stylecore warm-up`, a minute), so that no process compiles them again.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
SHARED ?= ../shared
OUTPUT ?= runs/dpst
MANIFEST ?= manifests/dpst-all.jsonl
export STYLECORE_WEIGHTS_DIR ?= $(abspath $(SHARED))/weights
export STYLECORE_SHARED ?= $(abspath $(SHARED))

.PHONY: install run smoke test benchmark

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e ".[test]"
	$(VENV)/bin/stylecore warm-up
	touch $@

install: $(VENV)/.installed

run: install
	$(PYTHON) -m ray_jobs.render $(MANIFEST) --data-root $(SHARED)/data/dpst --output $(OUTPUT)
	$(PYTHON) -m ray_jobs.report $(OUTPUT)

smoke: install
	$(PYTHON) -m ray_jobs.render manifests/dpst-smoke.csv --data-root $(SHARED)/data/dpst --output runs/smoke --smoke
	$(PYTHON) -m ray_jobs.report runs/smoke

test: install
	$(PYTHON) -m pytest

benchmark: install
	$(PYTHON) benchmarks/transfer_speed.py
