# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo-out
DEMO_EPOCHS    ?= 100,30
DEMO_GEN_STEPS ?= 500
DEMO_ARMS      ?= real,real-long,classic,vae-jitter@soft
STUDY          ?= study-out

.PHONY: install data demo study test test-slow lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST from the Debian package when missing (or from --data-dir / AUGMENTOR_DATA).
data:
	@scripts/ensure-fashion-mnist.sh

# The main job: samples from the shipped generators, then a small version of the gain study (3 draws, the
# budget curve on one draw; every generator is trained inside it on its draw's real subset only).
# About 17 minutes on 2 CPU cores; `make study` runs the full study behind the README's tables.
demo: install data
	$(BIN)/augmentor sample weights/fashion-mnist/dcgan --per-class 10 --out $(DEMO)/dcgan-samples \
		--grid $(DEMO)/dcgan-samples.png --overwrite
	$(BIN)/augmentor gain fashion-mnist --per-class 10,100 --draws 3 --real-epochs $(DEMO_EPOCHS) \
		--arms $(DEMO_ARMS) --curve-draws 1 --gen-steps $(DEMO_GEN_STEPS) --out $(DEMO)/gain --overwrite

# The study behind the README's tables: the recipe chosen on development draws (validation split), then
# 10 fresh draws scored on test, on Fashion-MNIST and on scikit-learn's digits.
study: install data
	$(BIN)/python bench/study.py --out $(STUDY)/fashion-mnist --per-class 10 --dev-draws 4 --draws 10
	$(BIN)/python bench/study.py --out $(STUDY)/digits --data sklearn-digits --image-size 28 --no-flip \
		--validation-per-class 40 --per-class 10 --dev-draws 4 --draws 10

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
