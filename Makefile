# Lab 3 kit. Quick start: `make demo`, then `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out
SUBMISSIONS ?= $(OUT)/demo/submissions
export MPLBACKEND ?= Agg
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup demo test test-browser lab release grade gradescope bench clean

setup: $(STAMP)

# Rebuilt only when a requirements file or pyproject.toml changes: a second run does nothing.
$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version.split()[0]' \
	  || { echo "Set PYTHON=/path/to/python3.11 (e.g. make setup PYTHON=python3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -c 'import verifier, circle, mnist_tools, autograde'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m autograde demo --out $(OUT)/demo

# The browser tests (tests/browser) run here too when Chromium is found, else one line says
# they were skipped; REQUIRE_BROWSER=1 makes a missing browser a failure (.ci/run sets it).
test: $(STAMP)
	$(PY) -m pytest

# Only the browser tests; a missing browser is a failure here unless REQUIRE_BROWSER=0.
test-browser: $(STAMP)
	REQUIRE_BROWSER=$${REQUIRE_BROWSER:-1} $(PY) -m pytest tests/browser

lab: $(STAMP)
	$(PY) -m autograde release --out $(OUT)/release
	cd $(OUT)/release && $(abspath $(VENV))/bin/jupyter lab lab3.ipynb

release: $(STAMP)
	$(PY) -m autograde release --out $(OUT)/release

grade: $(STAMP)
	$(PY) -m autograde grade $(SUBMISSIONS) --out $(OUT)/grades

# The Gradescope autograder: upload $(OUT)/autograder.zip (see README, "Grading on Gradescope").
gradescope: $(STAMP)
	$(PY) -m autograde gradescope --out $(OUT)/autograder.zip

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(OUT) .pytest_cache
