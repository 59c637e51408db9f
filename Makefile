# Two commands matter: `make serve` and `make test`. Everything installs into .venv.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is Python 3.12: prefer it, then 3.13, then whatever python3 is (>= 3.11).
# pyenv installs shims that fail when a version is not selected, so each candidate is run.
PYTHON ?= $(shell for p in python3.12 python3.13 \
	$$(ls -d $$(pyenv root 2>/dev/null || echo /nonexistent)/versions/3.12*/bin/python3.12 2>/dev/null) python3; do \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := $(VENV)/sam
STAMP := $(VENV)/.installed

.PHONY: help install serve test lint-template unit functional e2e benchmarks sam-build clean

help:
	@echo "make serve   run the service locally on an embedded DynamoDB (http://127.0.0.1:\$${PORT:-8080})"
	@echo "make test    install into .venv and run every check and test"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml flyte_plugin/pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q -e ./flyte_plugin
	touch $@

# The SAM CLI is a tool, not a library: its own venv keeps its pins out of the runtime's.
$(SAM_VENV)/bin/sam: | $(BIN)/python
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q aws-sam-cli

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/connectors serve

lint-template: $(STAMP) $(SAM_VENV)/bin/sam
	$(BIN)/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1 --template-file template.yaml

test: $(STAMP) lint-template
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .aws-sam

# ---------------------------------------------------------------------------------------------
# SAM build (template.yaml, BuildMethod: makefile). `sam build` calls build-<LogicalId> with
# ARTIFACTS_DIR set; samconfig.toml builds in source so SAM does not copy .venv to a scratch dir.
# - build-DependenciesLayer: the runtime dependencies, pyproject.toml [project].dependencies read
#   with tomllib, plus the `tracing` extra (aws-xray-sdk: imported only when the Tracing parameter
#   turns X-Ray on), as arm64 manylinux wheels for CPython 3.12, into the layer's python/ directory.
#   SAM builds a layer once; every function uses it.
# - build-<Function>: only connectors/ and handlers/, less the dev tools in connectors/dev/.
#   SAM builds each makefile function on its own (it never shares a makefile build between
#   functions), so this is a copy of a few hundred KB, not a pip install. connectors/relay/ runs
#   next to the executor, not in Lambda, and is left out too.
# Bytecode is compiled with --invalidation-mode unchecked-hash when the build Python is 3.12:
# Lambda's code directory is read-only, so without shipped .pyc files every cold start would
# compile every module, and hash-checked .pyc stay valid whatever mtimes the zip records.
# ---------------------------------------------------------------------------------------------
# Flyte's own connectors to build in (connectors/builtin/flyteplugins/): any of databricks,
# snowflake, bigquery and slurm, or all. Each brings in only its extra's dependencies (the layer
# installs pyproject.toml's dependencies plus those extras); a deployment serves each connector
# whose dependencies it holds. `make sam-build FLYTE_CONNECTORS="databricks slurm"`.
FLYTE_CONNECTORS ?=
export FLYTE_CONNECTORS
SAM_FUNCTIONS := CreateTaskFunction GetTaskFunction DeleteTaskFunction GetTaskMetricsFunction \
	GetTaskLogsFunction ConnectorMetadataFunction AbandonedTaskReaperFunction
LAMBDA_PYTHON_VERSION := 3.12
# A Python with pip for the build: the dev venv when present, else the one found above.
BUILD_PY = $(firstword $(wildcard $(BIN)/python) $(PYTHON))
# Compile .pyc only with the Lambda runtime's minor version (its magic number must match).
define compile_pyc
	@if $(BUILD_PY) -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(LAMBDA_PYTHON_VERSION)".split("."))))'; then \
	  $(BUILD_PY) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(1)" >/dev/null; \
	else echo "build Python is not $(LAMBDA_PYTHON_VERSION): shipping no .pyc (slower cold starts)"; fi
endef

.PHONY: build-DependenciesLayer $(addprefix build-,$(SAM_FUNCTIONS))

build-DependenciesLayer:
	$(BUILD_PY) -c 'import os, tomllib; project = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	  extras = project["optional-dependencies"]; \
	  chosen = os.environ.get("FLYTE_CONNECTORS", "").replace(",", " ").split(); \
	  chosen = ["databricks", "snowflake", "bigquery", "slurm"] if chosen == ["all"] else chosen; \
	  unknown = [c for c in chosen if c not in ("databricks", "snowflake", "bigquery", "slurm")]; \
	  assert not unknown, f"FLYTE_CONNECTORS: not one of databricks, snowflake, bigquery, slurm: {unknown}"; \
	  print("\n".join(project["dependencies"] + extras["tracing"] + [d for c in chosen for d in extras[c]]))' \
	  > "$(ARTIFACTS_DIR)/requirements.txt"
	$(BUILD_PY) -m pip install -q --disable-pip-version-check --no-compile \
	  --platform manylinux2014_aarch64 --only-binary=:all: \
	  --python-version $(LAMBDA_PYTHON_VERSION) --implementation cp \
	  --target "$(ARTIFACTS_DIR)/python" -r "$(ARTIFACTS_DIR)/requirements.txt"
	rm -rf "$(ARTIFACTS_DIR)/requirements.txt" "$(ARTIFACTS_DIR)/python/bin"
	$(call compile_pyc,$(ARTIFACTS_DIR)/python)

$(addprefix build-,$(SAM_FUNCTIONS)):
	tar -cf - --exclude=__pycache__ --exclude="*.pyc" --exclude=connectors/dev --exclude=connectors/relay connectors handlers | tar -xf - -C "$(ARTIFACTS_DIR)"
	$(call compile_pyc,$(ARTIFACTS_DIR))

# `sam build` with python3.12 on PATH (the runtime's Python; the makefile builds above use it).
sam-build: $(SAM_VENV)/bin/sam $(STAMP)
	PATH="$$($(PYTHON) -c 'import os, sys; print(os.path.dirname(os.path.realpath(sys.executable)))'):$$PATH" \
	  SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build --build-in-source
