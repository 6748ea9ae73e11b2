# cygno-pipeline — everything starts from here; only Python 3.11 is needed.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# numba kernels compiled into the on-disk cache; again whenever a kernel's source changes
KERNELS := $(VENV)/.kernels

.PHONY: venv test test-stress demo bench lint clean

venv: $(STAMP) $(KERNELS)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(KERNELS): $(STAMP) $(wildcard reco/*.py reco/clustering/*.py)
	$(BIN)/cygno warmup
	touch $(KERNELS)

# Three workers on two cores: the end-to-end tests mostly wait (heartbeats, schedules,
# servers starting); each test file stays on one worker (module fixtures start once).
test: venv
	$(BIN)/python -m pytest -q -n 3 --dist loadfile

demo: venv
	$(BIN)/cygno demo

# Cases not yet reliable inside the whole suite (each says why), run on their own.
test-stress: venv
	$(BIN)/python -m pytest -q -m stress

bench: venv
	$(BIN)/python -m pytest -q -m bench -s tests/benchmarks

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
