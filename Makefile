# Two commands on a fresh machine with Python 3.11+: `make demo` and `make test`.
# Each builds .venv (python3 -m venv, then pip install -e '.[test]') the first time it is needed.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test clean-venv

demo: $(STAMP)
	$(VENV)/bin/assistant-watcher demo

test: $(STAMP)
	$(VENV)/bin/ruff check watcher tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -m "slow or not slow"

# Rebuilt when pyproject.toml changes (new dependencies); a half-built venv is redone, not trusted.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "assistant-watcher needs Python 3.11 or newer ($(PYTHON) is $$($(PYTHON) -V 2>&1))"; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

clean-venv:
	rm -rf $(VENV)
