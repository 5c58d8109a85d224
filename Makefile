# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The PyTorch build to install (this pin matches the wheels the project is tested with).
TORCH  ?= torch==2.14.1

.PHONY: demo test install clean

$(BIN)/mrtlab: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(BIN)/mrtlab

demo: install  ## compress and decompress skimage's sample images with the bundled model
	$(BIN)/python tools/demo.py --out demo_out

test: install  ## the whole test suite (what CI runs)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo_out *.egg-info
