# Continuum: the two commands are `make demo` (the whole loop on the embedded local stack) and
# `make test` (the whole test suite against real local services). Both do all set-up themselves.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STACK := $(PY) docker/local/stack.py
TEST_SERVICES := kafka mlflow s3 postgres airflow
PYTEST_ARGS ?=

.PHONY: demo test up down status venv clean bench

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed; set PYTHON=/path/to/python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# uv installs the same versions as pip in a fifth of the time; pip stays the fallback
	$(PY) -m pip install -q uv && $(PY) -m uv pip install -q --python $(PY) -e '.[test]' || \
	  { echo "uv failed; installing with pip"; $(PY) -m pip install -q --upgrade pip wheel && \
	    $(PY) -m pip install -q -e '.[test]'; }
	@touch $(STAMP)

venv: $(STAMP)

up: $(STAMP)
	@$(STACK) up
	@$(STACK) status

down:
	@test -x $(PY) && $(STACK) down || true

status: $(STAMP)
	@$(STACK) status

demo: $(STAMP)
	@$(STACK) up kafka mlflow s3 postgres
	@$(STACK) down serving >/dev/null
	@$(STACK) reset-airflow
	@$(VENV)/bin/continuum-loop reset
	@$(STACK) up airflow serving
	@$(VENV)/bin/continuum-loop run --profile $(or $(PROFILE),demo)
	@$(STACK) status
	@echo "The UIs stay up until 'make down'."

test: $(STAMP)
	@mkdir -p .local/run; \
	trap '$(STACK) down --started-file .local/run/test-started' EXIT; \
	$(STACK) up $(TEST_SERVICES) --started-file .local/run/test-started && \
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	@for b in bench/*.py; do $(PY) $$b || exit 1; done

clean: down
	rm -rf .local $(VENV)
