# Two commands set up and run everything on a fresh machine:
#   make demo   - builds .venv (Python >= 3.12) and runs `bayescale demo`
#   make test   - builds .venv and runs the full test suite (make test-fast: the fast tier)
VENV   ?= .venv
PYTHON ?= $(shell for p in python3.13 python3.12 "env PYENV_VERSION=3.12.1 python" python3; do \
              $$p -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1 && { echo $$p; exit 0; }; done; echo python3)
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 12), "bayescale needs Python >= 3.12 (ArviZ 1.x); set PYTHON=/path/to/python3.12"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bayescale demo

# two test processes: a fit's compile runs on one core, so a second process fills the other
TEST_ARGS ?= -n 2 --dist loadfile

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q $(TEST_ARGS)

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q $(TEST_ARGS) -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check bayescale tests benchmarks case_studies

# every benchmark, then RESULTS.md; needs the peers: pip install -e '.[bench]'
BENCH_TAG ?= cpu$(shell nproc)
bench: $(STAMP)
	$(VENV)/bin/pip install -q -e '.[bench,dask]'
	$(VENV)/bin/python benchmarks/bench_peers.py --out benchmarks/results_peers_$(BENCH_TAG).json
	$(VENV)/bin/python benchmarks/bench_bootstrap.py --out benchmarks/results_bootstrap_$(BENCH_TAG).json
	$(VENV)/bin/python benchmarks/bench_scaling.py --out benchmarks/results_scaling_$(BENCH_TAG).json
	$(VENV)/bin/python benchmarks/bench_batch.py --out benchmarks/results_batch_$(BENCH_TAG).json
	$(VENV)/bin/python benchmarks/bench_fit.py --out benchmarks/results_fit_$(BENCH_TAG).json
	$(VENV)/bin/python benchmarks/bench_sweep.py --out benchmarks/results_sweep_$(BENCH_TAG).json
	$(VENV)/bin/python benchmarks/bench_extrapolation.py --out benchmarks/results_extrapolation_$(BENCH_TAG).json
	$(VENV)/bin/python benchmarks/report.py

clean:
	rm -rf $(VENV) .pytest_cache
