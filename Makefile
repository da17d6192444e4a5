# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo-out
DEMO_ARMS      ?= real,real-long,classic,classic@soft,vae
STUDY          ?= study-out

.PHONY: install data demo study test test-slow lint bench gpu-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST from the Debian package when missing (or from --data-dir / AUGMENTOR_DATA).
data:
	@scripts/ensure-fashion-mnist.sh

# The main job: samples from the shipped generators, then a small version of the gain study: 10 real images
# per class, the study's first 3 of 10 draws (the same numbers), the budget curve on one draw; every generator
# is trained inside it on its draw's real subset only. About 7 minutes on 2 idle CPU cores (measured); `make study` runs the
# study behind the README's tables.
demo: install data
	$(BIN)/augmentor sample weights/fashion-mnist/dcgan --per-class 10 --out $(DEMO)/dcgan-samples \
		--grid $(DEMO)/dcgan-samples.png --overwrite
	$(BIN)/augmentor gain fashion-mnist --per-class 10 --draws 3 --real-epochs 100 --synthetic-share 0.5 \
		--arms $(DEMO_ARMS) --curve-draws 1 --out $(DEMO)/gain --overwrite

# The study behind the README's tables: on Fashion-MNIST at 10 per class the recipe is chosen on development
# draws (validation split) and run on 10 fresh draws scored on test; then 100 per class (3 draws, the
# recipe) and scikit-learn's digits (5 draws, the Fashion-MNIST recipe). About 4 hours on 2 CPU cores.
study: install data
	$(BIN)/python bench/study.py --out $(STUDY)/fashion-mnist --per-class 10 --dev-draws 4 --draws 10 \
		--dev-real-epochs 100 --real-epochs 300
	OMP_NUM_THREADS=1 $(BIN)/augmentor gain fashion-mnist --per-class 100 --draws 3 --real-epochs 30 \
		--arms real,real-long,classic,classic@soft,vae --synthetic-share 0.5 --no-budget-curve \
		--out $(STUDY)/fashion-mnist-100 --overwrite
	OMP_NUM_THREADS=1 $(BIN)/python bench/study.py --out $(STUDY)/digits --data sklearn-digits --image-size 28 \
		--no-flip --validation-per-class 40 --per-class 10 --draws 5 --curve-draws 1 --skip-development vae@0.5 \
		--real-epochs 100

test: install data
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: install data
	$(BIN)/python -m pytest -m slow -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install data
	$(BIN)/python bench/classic.py
	$(BIN)/python bench/generative.py --quick

# On the GPU host (no venv, torch preinstalled, no network): environment, the gpu tests, the classifier and
# generative benchmarks, a one-rank torchrun and a gain study, each under its own timeout, in under 8 minutes,
# into $(OUT)/gpu-check.json and one log per part. Carry gpu-wheels/ (../shared/gpu/wheelhouse.sh gpu-wheels)
# and gpu-data/ (the four Fashion-MNIST files). `bench/gpu.sh DIR --smoke` checks the plumbing on a CPU.
OUT ?= gpu-check-out
gpu-check:
	bench/gpu.sh $(OUT)

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache
