# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The PyTorch build to install (this pin matches the wheels the project is tested with).
TORCH  ?= torch==2.14.1

.PHONY: demo test test-all install clean compressai-venv

$(BIN)/mrtlab: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q "$(TORCH)" -e ".[test]"
	touch $@

install: $(BIN)/mrtlab

demo: install  ## compress and decompress skimage's sample images with the bundled model
	$(BIN)/python tools/demo.py --out demo_out

test: install  ## lint, then the test suite without the heavy one (what CI runs; < 10 min on 2 cores)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not heavy"

test-all: install  ## lint, then every test, the heavy one too (fla's kernels in full in Triton's interpreter: ~6 min more)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

compressai-venv:  ## compressai 1.2.8 in a venv of its own (it pins numpy<2), for `mrtlab bench codec`
	test -x .venv-compressai/bin/python || $(PYTHON) -m venv .venv-compressai
	.venv-compressai/bin/python -m pip install -q "$(TORCH)" torchvision==0.29.1 compressai==1.2.8

clean:
	rm -rf $(VENV) demo_out *.egg-info
