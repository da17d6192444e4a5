# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo-out

.PHONY: install data demo test test-slow lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST from the Debian package when missing (or from --data / AUGMENTOR_DATA).
data:
	@scripts/ensure-fashion-mnist.sh

# The main job: a classic expansion to look at, then the gain experiment (about 4 minutes on 2 CPU cores).
demo: install data
	$(BIN)/augmentor data subset fashion-mnist --per-class 100 --seed 0 --out $(DEMO)/subset --overwrite
	$(BIN)/augmentor classic $(DEMO)/subset --pipeline medium --per-class 500 --seed 0 \
		--out $(DEMO)/expanded --overwrite
	$(BIN)/augmentor gain fashion-mnist --per-class 10,100 --arms real,classic --seeds 3 --budget 300 \
		--out $(DEMO)/gain --overwrite

test: install data
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: install data
	$(BIN)/python -m pytest -m slow -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install data
	$(BIN)/python bench/classic.py

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache
