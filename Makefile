# Two commands do all the setup: `make demo` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo_out
DEMO_ARGS ?=
PYTEST_ARGS ?=
# The board's interpreter: Python 3.10 with the PYNQ v3.1 image's numpy (Ubuntu 22.04's python3-numpy,
# 1.21.5) and pynq 3.1, for tests/test_board_python.py and tests/test_pynq_conformance.py.
BOARD_VENV ?= .venv-board
BOARD_NUMPY ?= 1.21.5
BOARD_PYNQ ?= 3.1.2
PYTHON310 ?= $(shell .ci/python310)

.PHONY: demo test test-quick lab bench bitstream board-env clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.lab: pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[lab]'
	touch $@

$(VENV)/.dev: $(VENV)/.lab
	$(PY) -m pip install --quiet -c constraints.txt -e '.[lab,dev]'
	touch $@

# The project goes in without its dependencies: the board-safe part must run on numpy alone.
$(BOARD_VENV)/.ready: pyproject.toml
	@test -n "$(PYTHON310)" || { echo "make: no Python 3.10 for $(BOARD_VENV) (see .ci/python310)" >&2; exit 1; }
	rm -rf $(BOARD_VENV)
	$(PYTHON310) -m venv $(BOARD_VENV)
	$(BOARD_VENV)/bin/python -m pip install --quiet numpy==$(BOARD_NUMPY) pycparser==2.19 pytest pynq==$(BOARD_PYNQ)
	$(BOARD_VENV)/bin/python -m pip install --quiet --no-deps -e .
	$(BOARD_VENV)/bin/python -c "import numpy, pynq.lib.dma, fastml_lab; assert numpy.__version__ == '$(BOARD_NUMPY)', numpy.__version__"
	touch $@

board-env: $(BOARD_VENV)/.ready

demo: $(VENV)/.lab
	$(VENV)/bin/fastml-lab demo --out $(DEMO_OUT) $(DEMO_ARGS)

# The suite runs in PYTEST_WORKERS processes (pytest-xdist); each module stays in one of them.
PYTEST_WORKERS ?= 2
test: $(VENV)/.dev $(BOARD_VENV)/.ready
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

# The edit loop: every test not marked slow, browser or tutorials (no training runs, no long compiles).
QUICK ?= not slow and not browser and not tutorials
test-quick: $(VENV)/.dev
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope -m "$(QUICK)" $(PYTEST_ARGS)

lab: $(VENV)/.lab
	$(VENV)/bin/jupyter lab tutorials/

bench: $(VENV)/.lab
	$(PY) bench/bench_emulator.py

bitstream: $(VENV)/.lab
	$(PY) bitstreams/make_packages.py
	@command -v vivado >/dev/null || echo "Vivado is not on PATH: packages are software-only; see bitstreams/README.md to build .bit/.hwh."

clean:
	rm -rf $(VENV) $(BOARD_VENV) $(DEMO_OUT) .pytest_cache
