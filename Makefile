# mo.fleet — one command for the demo, one for the tests.
#   make demo        set everything up, bring up the lab, run the demo
#   make test        set everything up, run every check (stages are timed)
# Other targets: setup, lab, lab-down, lab-down-all, unit, integration, molecule, lint,
# sanity, build, bench, changelog, clean.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := $(CURDIR)/.venv
STAMP := $(VENV)/.requirements-installed
export PATH := $(VENV)/bin:$(PATH)
export CONTAINERS_CONF := $(CURDIR)/lab/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
LINK := .collections/ansible_collections/mo/fleet

.PHONY: help setup host-deps venv link lab lab-down lab-down-all demo test unit integration \
        molecule lint sanity build bench changelog clean

help:
	@sed -n '2,6p' Makefile | sed 's/^# \{0,1\}//'

setup: host-deps venv link

host-deps:
	@bash lab/install-host-deps.sh

# The ansible-core wheel the repository server serves to pull hosts (roles/repo_server,
# repo_server_pull_wheel_cache): fetched here once, so playbook runs and tests find it cached.
WHEELS ?= $(HOME)/.cache/mo-fleet/wheels

venv: $(STAMP)
	@v=$$($(VENV)/bin/python -c 'from ansible.release import __version__ as v; print(v)'); \
	 w="$(WHEELS)/ansible_core-$$v-py3-none-any.whl"; \
	 test -f "$$w" || { echo "venv: fetching the ansible-core $$v wheel for pull hosts into $(WHEELS)"; \
	   $(VENV)/bin/pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
	     "ansible-core==$$v" -d "$(WHEELS)"; }

$(STAMP): requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@echo "venv: installing requirements.txt into .venv"
	@$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

link:
	@test -L $(LINK) || { mkdir -p $(dir $(LINK)) && ln -sfn ../../.. $(LINK) && echo "link: $(LINK) -> checkout"; }

lab: setup
	@$(VENV)/bin/python lab/labctl.py up

lab-down: venv
	@$(VENV)/bin/python lab/labctl.py down

lab-down-all: venv
	@$(VENV)/bin/python lab/labctl.py down --image

demo: lab
	@bash demo/run.sh

test: setup
	@bash tests/run-suite.sh all

unit integration molecule lint sanity build: setup
	@bash tests/run-suite.sh $@

bench: setup
	@bash benchmarks/run.sh

changelog: setup
	@antsibull-changelog lint && antsibull-changelog release --version "$$(awk '/^version:/{print $$2}' galaxy.yml)"

clean:
	rm -rf .build .cache tests/output .pytest_cache *.tar.gz
