# Two commands do all the setup: `make demo` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo_out
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test lab bench bitstream clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.lab: pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[lab]'
	touch $@

$(VENV)/.dev: $(VENV)/.lab
	$(PY) -m pip install --quiet -c constraints.txt -e '.[lab,dev]'
	touch $@

demo: $(VENV)/.lab
	$(VENV)/bin/fastml-lab demo --out $(DEMO_OUT) $(DEMO_ARGS)

test: $(VENV)/.dev
	$(PY) -m pytest $(PYTEST_ARGS)

lab: $(VENV)/.lab
	$(VENV)/bin/jupyter lab tutorials/

bench: $(VENV)/.lab
	$(PY) bench/bench_emulator.py

bitstream: $(VENV)/.lab
	$(PY) bitstreams/make_packages.py
	@command -v vivado >/dev/null || echo "Vivado is not on PATH: packages are software-only; see bitstreams/README.md to build .bit/.hwh."

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
