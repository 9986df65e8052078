# Both targets (re)build .venv whenever pyproject.toml changes, so a fresh clone
# needs nothing but Python 3.10+ and these two commands.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[cluster,dev,tune-search]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m rayneas demo

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
