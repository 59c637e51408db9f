# Two commands matter: `make serve` and `make test`. Everything installs into .venv, from uv.lock.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is Python 3.12: prefer it, then 3.13, then whatever python3 is (>= 3.11).
# pyenv installs shims that fail when a version is not selected, so each candidate is run.
PYTHON ?= $(shell for p in python3.12 python3.13 \
	$$(ls -d $$(pyenv root 2>/dev/null || echo /nonexistent)/versions/3.12*/bin/python3.12 2>/dev/null) python3; do \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# ---------------------------------------------------------------------------------------------
# Dependencies. Every install is exactly a committed lock, with hashes, and never resolves anew:
# - uv.lock: the runtime set, every extra, the dev group and the flyte plugin (a workspace member);
# - tools/sam/uv.lock: the SAM CLI, in a venv of its own (its pins would hold the runtime back);
# - tools/requirements-uv.txt: uv itself, installed by pip with --require-hashes into .tools/uv;
# - tools/oracle-wheels.txt: the flyte-sdk plugin wheels the differential tests load by file.
# `make lock` refreshes the locks to the newest releases on purpose; `make test-latest` runs the
# whole suite in a throwaway copy resolved to the newest releases and prints what moved.
# ---------------------------------------------------------------------------------------------
TOOLS := .tools
UV := $(CURDIR)/$(TOOLS)/uv/bin/uv
SAM := $(TOOLS)/sam/bin/sam
WHEELS := $(VENV)/wheels
# uv.lock is a universal lock: these only say where uv puts things and which Python it uses.
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: help install serve test lint lint-github lint-template lock upgrade relay-requirements test-latest sam-build clean \
	docs docs-build chromium

help:
	@echo "make serve   run the service locally on an embedded DynamoDB (http://127.0.0.1:\$${PORT:-8080})"
	@echo "make test    install into .venv and run every check and test"
	@echo "make docs    serve the documentation site on http://$(DOCS_ADDR) (make docs-build: build it into $(SITE_DIR)/)"

$(UV): tools/requirements-uv.txt
	$(PYTHON) -m venv $(TOOLS)/uv
	PIP_CONFIG_FILE=/dev/null $(TOOLS)/uv/bin/pip install -q --disable-pip-version-check --require-hashes --no-deps \
	  -r tools/requirements-uv.txt
	touch $@

$(STAMP): pyproject.toml flyte_plugin/pyproject.toml uv.lock tools/oracle-wheels.txt | $(UV)
	$(UV) sync --locked --all-extras -q
	PIP_CONFIG_FILE=/dev/null $(BIN)/python -m pip download -q --disable-pip-version-check --no-deps --require-hashes \
	  -r tools/oracle-wheels.txt -d $(WHEELS)
	touch $@

$(SAM): tools/sam/uv.lock tools/sam/pyproject.toml | $(UV)
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(TOOLS)/sam $(UV) sync --locked -q --project tools/sam
	touch $@

install: $(STAMP)

# make serve serves what the Lambda package serves: the dev venv also holds the flyte SDK and
# flyteplugins-slurm (for the differential tests), whose connectors the deployment does not have.
# `make serve FLYTE_SDK_CONNECTORS=all` serves them too (connectors/flyte_sdk.py).
serve: $(STAMP)
	FLYTE_SDK_CONNECTORS=$(or $(FLYTE_SDK_CONNECTORS),none) $(BIN)/connectors serve

lint-template: $(STAMP) $(SAM)
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint --region us-east-1 --template-file template.yaml

# ruff (lint and format), mypy, the .github files and the pre-commit config (.pre-commit-config.yaml
# runs the same before a commit).
lint: $(STAMP) lint-github
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The workflow and dependabot files against their schemas (vendored in check-jsonschema: offline)
# and zizmor's audit (--offline: no GitHub API); the pre-commit config against pre-commit's.
lint-github: $(STAMP)
	$(BIN)/check-jsonschema -q --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema -q --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/zizmor -q --offline .github/workflows/*.yml .github/dependabot.yml
	$(BIN)/pre-commit validate-config .pre-commit-config.yaml

# The suite on parallel workers (pytest-xdist): most of its time is waiting on servers and jobs,
# not CPU. A test file stays on one worker (--dist loadfile), with its module's fixtures; each
# worker starts its own moto server. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 4
test: $(STAMP) lint lint-template docs-build chromium
	DOCS_SITE=$(abspath $(SITE_DIR)) $(BIN)/python -m pytest $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)

# Refresh both locks to the newest releases (then run `make test` and commit them together).
lock upgrade: | $(UV)
	$(UV) lock --upgrade
	cd tools/sam && $(UV) lock --upgrade
	$(UV) pip compile -q --upgrade --universal --generate-hashes tools/requirements-uv.in -o tools/requirements-uv.txt
	$(UV) pip compile -q --upgrade --universal --generate-hashes --no-deps tools/oracle-wheels.in -o tools/oracle-wheels.txt
	$(MAKE) relay-requirements

# The relay image's requirements (deploy/relay/requirements.txt): the lock's runtime set, the relay
# extra and the setuptools that builds the package, with hashes. `make lock` writes it again.
RELAY_REQUIREMENTS ?= deploy/relay/requirements.txt
relay-requirements: | $(UV)
	$(UV) export --frozen --no-dev --no-default-groups --group build --extra relay --no-emit-project \
	  --no-annotate --no-header -q --format requirements-txt -o $(RELAY_REQUIREMENTS)

# The whole suite against the newest releases, in a throwaway copy of this checkout (its own
# .venv and locks); prints which packages moved. Not part of .ci/run.
test-latest: | $(UV)
	set -e; latest=$$(mktemp -d -t test-latest.XXXXXX); \
	git ls-files -z --cached --others --exclude-standard | tar --null -cf - -T - | tar -xf - -C $$latest; \
	(cd $$latest && $(UV) lock --upgrade -q && $(MAKE) -s relay-requirements && cd tools/sam && $(UV) lock --upgrade -q); \
	$(PYTHON) tools/lock_diff.py uv.lock $$latest/uv.lock; \
	$(PYTHON) tools/lock_diff.py tools/sam/uv.lock $$latest/tools/sam/uv.lock; \
	$(MAKE) -C $$latest test PYTHON=$(PYTHON); \
	echo "make test-latest: passed in $$latest"

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam $(SITE_DIR)

# ---------------------------------------------------------------------------------------------
# The documentation site (mkdocs.yml: MkDocs with the Material theme, from docs/). The connector
# tables, the parameters and the lifecycle diagram's check are made from the code at build time
# (tools/docsite/hooks.py): nothing generated is committed. Material loads Mermaid from a CDN
# unless the page already has it, so the build adds mermaid.min.js from mermaid's npm package,
# fetched once with npm and checked against the integrity below (npm's sha512 of the tarball).
# tests/e2e/test_docs_site.py opens the built site in Debian's Chromium (`make chromium` installs
# it when missing: the machine is root and has apt; elsewhere the test says why it skips).
# ---------------------------------------------------------------------------------------------
DOCS_ADDR ?= 127.0.0.1:8001
SITE_DIR ?= .site
MERMAID_VERSION := 11.17.2
MERMAID_INTEGRITY := sha512-V6K3C8EBdEsPFZXSKMJe6ppQOENxuHARr9GvHX4hh47lAbhMRD9qf4oEK7LoaRQxULMa80/qt5gHO73aCleBBg==
MERMAID_JS := $(TOOLS)/mermaid/mermaid-$(MERMAID_VERSION).min.js
export MERMAID_JS := $(CURDIR)/$(MERMAID_JS)
export NO_MKDOCS_2_WARNING := 1

$(CURDIR)/$(MERMAID_JS) $(MERMAID_JS):
	mkdir -p $(TOOLS)/mermaid
	cd $(TOOLS)/mermaid && npm pack --silent --no-fund --no-audit mermaid@$(MERMAID_VERSION) >/dev/null
	$(PYTHON) -c 'import base64, hashlib, sys; data = open(sys.argv[1], "rb").read(); \
	  got = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(); \
	  sys.exit(0 if got == sys.argv[2] else f"{sys.argv[1]}: integrity {got}, not {sys.argv[2]}")' \
	  $(TOOLS)/mermaid/mermaid-$(MERMAID_VERSION).tgz $(MERMAID_INTEGRITY)
	tar -xzf $(TOOLS)/mermaid/mermaid-$(MERMAID_VERSION).tgz -O package/dist/mermaid.min.js > $(MERMAID_JS).part
	mv $(MERMAID_JS).part $(MERMAID_JS) && rm $(TOOLS)/mermaid/mermaid-$(MERMAID_VERSION).tgz

docs-build: $(STAMP) $(MERMAID_JS)
	$(BIN)/mkdocs build --strict --site-dir $(abspath $(SITE_DIR))

docs: $(STAMP) $(MERMAID_JS)
	$(BIN)/mkdocs serve --strict --dev-addr $(DOCS_ADDR)

CHROMIUM ?= chromium
chromium:
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { \
	  echo "make chromium: installing Debian's chromium for tests/e2e/test_docs_site.py"; \
	  { apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; } || \
	  echo "make chromium: could not install chromium (apt-get needs root and Debian's archive): the browser test will skip"; }

# ---------------------------------------------------------------------------------------------
# SAM build (template.yaml, BuildMethod: makefile). `sam build` calls build-<LogicalId> with
# ARTIFACTS_DIR set; samconfig.toml builds in source so SAM does not copy .venv to a scratch dir.
# - build-DependenciesLayer: exactly the lock's runtime set (uv export of uv.lock without the dev
#   group: pyproject.toml's dependencies and what they pull in, at the locked versions, with their
#   hashes), plus the `tracing` extra (aws-xray-sdk: imported only when the Tracing parameter turns
#   X-Ray on) and the extras FLYTE_CONNECTORS names, installed as arm64 manylinux wheels for
#   CPython 3.12 into the layer's python/ directory. `make -s layer-requirements` prints that list.
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
	GetTaskLogsFunction ConnectorMetadataFunction AbandonedTaskReaperFunction StatusEventsFunction
LAMBDA_PYTHON_VERSION := 3.12
# A Python with pip for the build: the dev venv when present, else the one found above.
BUILD_PY = $(firstword $(wildcard $(BIN)/python) $(PYTHON))
# Compile .pyc only with the Lambda runtime's minor version (its magic number must match).
define compile_pyc
	@if $(BUILD_PY) -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(LAMBDA_PYTHON_VERSION)".split("."))))'; then \
	  $(BUILD_PY) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(1)" >/dev/null; \
	else echo "build Python is not $(LAMBDA_PYTHON_VERSION): shipping no .pyc (slower cold starts)"; fi
endef

.PHONY: layer-requirements build-DependenciesLayer $(addprefix build-,$(SAM_FUNCTIONS))

FLYTE_CONNECTOR_NAMES := databricks snowflake bigquery slurm
comma := ,
NAMED_CONNECTORS = $(subst $(comma), ,$(FLYTE_CONNECTORS))
CHOSEN_CONNECTORS = $(if $(filter all,$(NAMED_CONNECTORS)),$(FLYTE_CONNECTOR_NAMES),$(NAMED_CONNECTORS))
LAYER_EXTRAS = tracing $(CHOSEN_CONNECTORS)

layer-requirements: | $(UV)
	$(if $(filter-out $(FLYTE_CONNECTOR_NAMES) all,$(NAMED_CONNECTORS)),$(error FLYTE_CONNECTORS: not one of $(FLYTE_CONNECTOR_NAMES) or all: $(filter-out $(FLYTE_CONNECTOR_NAMES) all,$(NAMED_CONNECTORS))))
	@$(UV) export --frozen --no-dev --no-default-groups --no-emit-project --no-header --no-annotate -q \
	  --format requirements-txt $(addprefix --extra ,$(LAYER_EXTRAS))

# sam build sets ARTIFACTS_DIR; without it these targets would write to the filesystem's root.
need_artifacts_dir = $(if $(ARTIFACTS_DIR),,$(error ARTIFACTS_DIR is not set: `sam build` (make sam-build) sets it))

build-DependenciesLayer: | $(UV)
	$(need_artifacts_dir)
	$(MAKE) -s --no-print-directory layer-requirements > "$(ARTIFACTS_DIR)/requirements.txt"
	$(UV) pip install -q --no-deps --require-hashes --only-binary :all: --no-compile \
	  --python-platform aarch64-manylinux_2_34 --python-version $(LAMBDA_PYTHON_VERSION) \
	  --target "$(ARTIFACTS_DIR)/python" -r "$(ARTIFACTS_DIR)/requirements.txt"
	rm -rf "$(ARTIFACTS_DIR)/requirements.txt" "$(ARTIFACTS_DIR)/python/bin"
	$(call compile_pyc,$(ARTIFACTS_DIR)/python)

$(addprefix build-,$(SAM_FUNCTIONS)):
	$(need_artifacts_dir)
	tar -cf - --exclude=__pycache__ --exclude="*.pyc" --exclude=connectors/dev --exclude=connectors/relay connectors handlers | tar -xf - -C "$(ARTIFACTS_DIR)"
	$(call compile_pyc,$(ARTIFACTS_DIR))

# `sam build` with python3.12 on PATH (the runtime's Python; the makefile builds above use it).
sam-build: $(SAM) $(STAMP)
	PATH="$$($(PYTHON) -c 'import os, sys; print(os.path.dirname(os.path.realpath(sys.executable)))'):$$PATH" \
	  SAM_CLI_TELEMETRY=0 $(SAM) build --build-in-source
