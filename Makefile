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

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
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
