# Two commands set everything up on a fresh machine: `make demo` runs the demo on the bundled
# model, `make test` runs the tests (`make test-quick` the fast part, `make lint` ruff). Each
# creates the virtual environment on first use (and again when pyproject.toml changes): PyTorch
# first, then the package with every extra.
#
# TORCH_INDEX: where PyTorch comes from. Empty (the default) takes `torch==2.13.0` from pip's
# configured indexes: the CPU wheel on this project's machines, the CUDA build on an ordinary
# Linux machine with a GPU. For the CPU build elsewhere:
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.installed

.PHONY: demo test test-quick lint install clean

demo: $(STAMP)
	$(VENV)/bin/colorgan demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

# the tests a developer runs between edits: everything but the tests marked slow (training runs,
# subprocesses, the browser and served demos, the bundled model on real photos)
test-quick: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(VENV)/bin/python -m pip install -q -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV)
