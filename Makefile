# Two set-up commands for a fresh machine: `make run` and `make test`.
# Both create .venv if it is absent and install pgax with the pinned versions in constraints.txt.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: run test mutants install install-test bench clean

run: $(VENV)/.installed
	$(VENV)/bin/pgax train ppo --env CartPole-v1

test: $(VENV)/.installed-test
	$(PY) -m pytest -q -n 2 --dist loadgroup

# Plant each bug of tools/mutants.py's list in a scratch copy and check that its tests fail (not part of `make test`).
MUTANTS_ARGS ?= --markdown docs/mutants.md
mutants: $(VENV)/.installed-test
	$(PY) tools/mutants.py $(MUTANTS_ARGS)

bench: $(VENV)/.installed
	$(PY) benchmarks/ppo_cartpole.py

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "pgax needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) -e ".[test]"
	touch $@

clean:
	rm -rf $(VENV) *.egg-info
