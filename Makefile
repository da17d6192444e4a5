# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo-out
DEMO_BUDGET    ?= 200
DEMO_GEN_STEPS ?= 500

.PHONY: install data demo test test-slow lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST from the Debian package when missing (or from --data-dir / AUGMENTOR_DATA).
data:
	@scripts/ensure-fashion-mnist.sh

# The main job: samples from the shipped generators, then the full gain experiment (every generator is
# trained inside it on its arm's real subset only). About 12 minutes on 2 CPU cores.
demo: install data
	$(BIN)/augmentor sample weights/fashion-mnist/dcgan --per-class 10 --out $(DEMO)/dcgan-samples \
		--grid $(DEMO)/dcgan-samples.png --overwrite
	$(BIN)/augmentor gain fashion-mnist --per-class 10,100 --draws 3 --budget $(DEMO_BUDGET) \
		--arms real,classic,vae,dcgan,classic+vae,classic+dcgan --gen-steps $(DEMO_GEN_STEPS) \
		--out $(DEMO)/gain --overwrite

test: install data
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: install data
	$(BIN)/python -m pytest -m slow -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install data
	$(BIN)/python bench/classic.py
	$(BIN)/python bench/generative.py --quick

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache
