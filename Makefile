# Continuum: the two commands are `make demo` (the whole loop on the embedded local stack) and
# `make test` (the whole test suite against real local services). Both do all set-up themselves.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STACK := $(PY) docker/local/stack.py
TEST_SERVICES := kafka mlflow s3 postgres airflow
TEST_LOCAL := $(CURDIR)/.local/test
TEST_ENV := CONTINUUM_LOCAL_DIR=$(TEST_LOCAL) CONTINUUM_LAKE_URI=$(TEST_LOCAL)/lake \
	CONTINUUM_ALERT_STATE_PATH=$(TEST_LOCAL)/alerts/state.json CONTINUUM_TEST_AIRFLOW_HOME=$(TEST_LOCAL)/airflow
PYTEST_ARGS ?=
# `make test` runs two lanes at once on its stack. The side lane: the tests that need no service
# (CPU-bound, at lower priority), then those that start stacks of their own (their own broker, registry
# or Airflow: nothing they do touches the suite's). The services lane: the integration and end-to-end
# tests on the suite's stack, which mostly wait on the services.
UNIT_LANE := tests/unit tests/dags
OWN_STACK_LANE := $(wildcard tests/integration/test_faults.py tests/integration/test_celery_executor.py)
SERVICE_LANE := tests/integration tests/e2e
# the demo's world after its drift, where its live stream goes on (see `make demo`)
DEMO_LIVE_SCENARIO := covariate;concept
# The lock: uv.lock (every platform and Python version) and constraints.txt, its export for pip and the
# Docker images. `make lock` regenerates both; `make lock UPGRADE=mlflow` moves one package to its newest.
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
EXPORT := $(UV) export --frozen --all-extras --no-emit-project --no-hashes --no-header --quiet

.PHONY: demo replay test up down status venv clean bench lock lock-check live alive helm

# helm for the chart's test (deploy/): built once from the Go module proxy into .local/bin
HELM := .local/bin/helm
$(HELM): deploy/build-helm.sh
	@bash deploy/build-helm.sh
	@touch $(HELM)

helm: $(HELM)

$(STAMP): pyproject.toml uv.lock constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed; set PYTHON=/path/to/python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# uv installs the same versions as pip in a fifth of the time; pip stays the fallback. Both install
	@# exactly the locked versions (constraints.txt).
	$(PY) -m pip install -q uv==$(UV_VERSION) && $(UV) pip install -q --python $(PY) -c constraints.txt -e '.[test]' || \
	  { echo "uv failed; installing with pip"; $(PY) -m pip install -q --upgrade pip wheel && \
	    $(PY) -m pip install -q -c constraints.txt -e '.[test]'; }
	@touch $(STAMP)

# CI fails here when pyproject.toml and the lock disagree, or constraints.txt is not the lock's export
lock-check: $(STAMP)
	@$(UV) lock --check --quiet || { echo "uv.lock does not match pyproject.toml: run 'make lock' and commit both files"; exit 1; }
	@$(EXPORT) | diff -q - constraints.txt >/dev/null || \
	  { echo "constraints.txt is not uv.lock's export: run 'make lock' and commit it"; exit 1; }
	@echo "lock: uv.lock and constraints.txt match pyproject.toml"

lock: $(STAMP)
	$(UV) lock $(if $(UPGRADE),--upgrade-package $(UPGRADE))
	$(EXPORT) -o constraints.txt

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
	@$(STACK) down live serving >/dev/null
	@$(STACK) reset-airflow
	@$(VENV)/bin/continuum-loop reset
	@$(STACK) up airflow serving
	@$(VENV)/bin/continuum-loop run --profile $(or $(PROFILE),demo)
	@# a live stream after the replayed history, so the hourly DAGs, the sidecar and the report keep moving;
	@# it goes on in the world the demo left (the covariate shift and concept drift the new champion learned):
	@# a stream back in the old regime would be a drift of its own. `make live` (no SCENARIO) plays the old one.
	@CONTINUUM_LIVE_SCENARIO="$(or $(SCENARIO),$(DEMO_LIVE_SCENARIO))" $(STACK) up live
	@$(STACK) status
	@echo "The UIs and the live stream stay up until 'make down' ('make live RATE=... SCENARIO=...' changes the stream)."

# a recorded file through the same loop, paced in real time's order, under the file's own contract and model:
#   make replay FILE=<csv|parquet|pkg:package/path> CONTRACT=<contract.yaml> (ROWS_PER_HOUR=N | TIME_COLUMN=col)
#               [MODEL=name] [ARGS="--change-at row:12000 --history-hours 24 --from ... --to ..."]
# The DAGs and the sidecar restart with CONTINUUM_CONTRACT/_MODEL_NAME/_EXPECTATIONS_DIR set; `make demo` restores them.
replay: $(STAMP)
	@test -n "$(FILE)" -a -n "$(CONTRACT)" || { echo "usage: make replay FILE=... CONTRACT=... (ROWS_PER_HOUR=N | TIME_COLUMN=col) [MODEL=name] [ARGS='...']"; exit 2; }
	@$(PY) -m tooling.loop.replay_stack $(CONTRACT) $(MODEL) -- --replay $(FILE) \
		$(if $(ROWS_PER_HOUR),--rows-per-hour $(ROWS_PER_HOUR)) $(if $(TIME_COLUMN),--time-column $(TIME_COLUMN)) $(ARGS)

# after `make demo`: waits for the first live hour's scheduled offload and monitor (about an hour) and
# checks they went green and on-call heard nothing above info
alive: $(STAMP)
	@$(VENV)/bin/continuum-loop alive

# the live stream: the simulator in real time (RATE events/s, default 5; SCENARIO e.g. covariate@+10m)
live: $(STAMP)
	@$(STACK) down live >/dev/null
	@CONTINUUM_LIVE_RATE="$(RATE)" CONTINUUM_LIVE_SCENARIO="$(SCENARIO)" $(STACK) up live

# The suite runs on a stack of its own in .local/test (its broker, registry, lake, database and Airflow),
# never on the demo's data: a stack running from .local is paused (stopped, its data kept) and
# restarted when the tests end.
test: $(STAMP) lock-check $(HELM)
	@mkdir -p .local/run $(TEST_LOCAL)/run; \
	$(STACK) pause --started-file .local/run/paused-by-test || exit 1; \
	trap '$(TEST_ENV) $(STACK) down --started-file $(TEST_LOCAL)/run/test-started; \
	      $(STACK) resume --started-file .local/run/paused-by-test' EXIT; \
	export $(TEST_ENV); \
	$(STACK) up $(TEST_SERVICES) --own --started-file $(TEST_LOCAL)/run/test-started || exit 1; \
	if [ -n "$(PYTEST_ARGS)" ]; then $(PY) -m pytest $(PYTEST_ARGS); exit; fi; \
	echo "side lane ($(UNIT_LANE), then $(or $(OWN_STACK_LANE),nothing)) runs beside the others; its log: $(TEST_LOCAL)/side-lane.log"; \
	{ nice -n 10 $(PY) -m pytest $(UNIT_LANE) -p no:cacheprovider; units=$$?; owns=0; \
	  if [ -n "$(OWN_STACK_LANE)" ]; then $(PY) -m pytest $(OWN_STACK_LANE) -p no:cacheprovider; owns=$$?; fi; \
	  echo "side lane: unit tests exit $$units, own-stack tests exit $$owns"; \
	  [ $$units -eq 0 ] && [ $$owns -eq 0 ]; } > $(TEST_LOCAL)/side-lane.log 2>&1 & side=$$!; \
	$(PY) -m pytest $(SERVICE_LANE) $(addprefix --ignore=,$(OWN_STACK_LANE)); services=$$?; \
	wait $$side; sides=$$?; \
	echo "======== side lane ========"; cat $(TEST_LOCAL)/side-lane.log; \
	echo "make test: services lane exit $$services, side lane exit $$sides"; \
	[ $$services -eq 0 ] && [ $$sides -eq 0 ]

bench: $(STAMP)
	@for b in bench/*.py; do $(PY) $$b || exit 1; done

clean: down
	rm -rf .local $(VENV)
