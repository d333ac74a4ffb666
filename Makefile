# Lab 3 kit. Quick start: `make demo`, then `make test`. See README.md.
SHELL := /bin/bash
# The Python that builds the venv: 3.10 to 3.13. Empty means the newest supported one on PATH
# (tools/find-python). Pick another with e.g. `make setup PYTHON=python3.13 VENV=.venv-313`.
PYTHON ?=
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out
SUBMISSIONS ?= $(OUT)/demo/submissions
export MPLBACKEND ?= Agg
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup python-venv demo test test-browser lab release grade gradescope bench clean

setup: $(STAMP)

# The venv's interpreter: made with the chosen Python when missing. When PYTHON=... names another
# version than the venv holds, stop (every target checks, even with nothing to install).
python-venv:
	@if [ ! -x $(PY) ]; then \
	  py=$$(tools/find-python $(PYTHON)) || exit 1; \
	  echo "$(VENV): Python $$($$py -c 'import sys; print(sys.version.split()[0])') ($$py)"; \
	  $$py -m venv $(VENV); \
	elif [ -n "$(PYTHON)" ]; then \
	  py=$$(tools/find-python $(PYTHON)) || exit 1; \
	  have=$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  want=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  [ "$$have" = "$$want" ] || { echo "$(VENV) holds Python $$have, not $$want ($(PYTHON)): remove it, or choose another VENV=..."; exit 1; }; \
	fi

# Rebuilt only when a requirements file or pyproject.toml changes: a second run does nothing.
$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt requirements-vnnlib2.txt pyproject.toml | python-venv
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --upgrade \
	  --target $(VENV)/vnnlib2 -r requirements-vnnlib2.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -c 'import verifier, circle, mnist_tools, autograde'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m autograde demo --out $(OUT)/demo

# The browser tests (tests/browser) run here too when Chromium is found, else one line says
# they were skipped; REQUIRE_BROWSER=1 makes a missing browser a failure (.ci/run sets it).
# TESTS=... runs only those test files or folders (.ci/run does, on a second Python).
TESTS ?=
test: $(STAMP)
	$(PY) -m pytest $(TESTS)

# Only the browser tests; a missing browser is a failure here unless REQUIRE_BROWSER=0.
test-browser: $(STAMP)
	REQUIRE_BROWSER=$${REQUIRE_BROWSER:-1} $(PY) -m pytest tests/browser

lab: $(STAMP)
	$(PY) -m autograde release --out $(OUT)/release
	cd $(OUT)/release && JUPYTER_CONFIG_PATH=$$PWD/jupyter $(abspath $(VENV))/bin/jupyter lab lab3.ipynb

release: $(STAMP)
	$(PY) -m autograde release --out $(OUT)/release

grade: $(STAMP)
	$(PY) -m autograde grade $(SUBMISSIONS) --out $(OUT)/grades

# The Gradescope autograder: upload $(OUT)/autograder.zip (see docs/gradescope.md).
gradescope: $(STAMP)
	$(PY) -m autograde gradescope --out $(OUT)/autograder.zip

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(OUT) .pytest_cache
