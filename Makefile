# Two commands set everything up on a fresh machine: `make demo` runs the demo on the bundled
# model, `make test` runs the tests. Each creates the virtual environment on first use (and again
# when pyproject.toml changes): PyTorch first, then the package with every extra.
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

.PHONY: demo test install clean

demo: $(STAMP)
	$(VENV)/bin/colorgan demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(VENV)/bin/python -m pip install -q -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV)
