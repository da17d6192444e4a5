# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo-out
DEMO_ARMS      ?= real,real-long,classic:light,classic:light@soft,vae
STUDY          ?= study-out
# The classic candidates the committed studies (docs/study) were planned with; the default is now
# light, heavy, randaugment.
STUDY_CLASSIC  ?= classic:light,classic:medium,classic:heavy

.PHONY: install data demo study test test-slow lint bench gpu-check clean

# scripts/install.sh: torch's CPU build where there is no GPU and PyTorch's CPU index answers, each step said.
$(STAMP): pyproject.toml scripts/install.sh
	PYTHON=$(PYTHON) VENV=$(VENV) scripts/install.sh
	touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST from the Debian package when missing (or from --data-dir / AUGMENTOR_DATA).
data:
	@scripts/ensure-fashion-mnist.sh

# The main job: samples from the shipped generators, then a small version of the gain study: 10 real images
# per class, the study's first 3 of 10 draws (the same numbers), the budget curve on one draw; every generator
# is trained inside it on its draw's real subset only. About 5 minutes on 2 idle CPU cores (4 min 20 s of experiment, 2026-12-06); `make study` runs the
# study behind the README's tables.
demo: install data
	$(BIN)/augmentor sample weights/fashion-mnist/dcgan --per-class 10 --out $(DEMO)/dcgan-samples \
		--grid $(DEMO)/dcgan-samples.png --overwrite
	$(BIN)/augmentor gain fashion-mnist --per-class 10 --draws 3 --real-epochs 100 --synthetic-share 0.5 \
		--arms $(DEMO_ARMS) --curve-draws 1 --out $(DEMO)/gain --overwrite

# The studies behind the README's study table: `augmentor study` with its default plan (3 classic against
# 3 generative candidates at shares 0.25 and 0.5 on 4 development draws, then 10 fresh confirmation draws
# read once on test) on Fashion-MNIST and three offline sets at 10 per class, then with every default on a
# 30-per-class 25 px folder (cross-validated development); at 100 per class on Fashion-MNIST and at 50 on the
# digits (they hold about 90 a class). 35 to 80 minutes each on 2 CPU cores; `scripts/study_table.py docs/study` prints the table from what they write.
study: install data
	$(BIN)/augmentor study fashion-mnist --classic $(STUDY_CLASSIC) --per-class 10 --out $(STUDY)/fashion-mnist-10
	$(BIN)/python scripts/offline_set.py digits $(STUDY)/data/digits.npz
	$(BIN)/augmentor study $(STUDY)/data/digits.npz --classic $(STUDY_CLASSIC) --per-class 10 --image-size 28 --no-flip --out $(STUDY)/digits-10
	$(BIN)/python scripts/offline_set.py grey-crops $(STUDY)/data/grey-crops.npz
	$(BIN)/augmentor study $(STUDY)/data/grey-crops.npz --classic $(STUDY_CLASSIC) --per-class 10 --out $(STUDY)/grey-crops-10
	$(BIN)/python scripts/offline_set.py colour-crops $(STUDY)/data/colour-crops.npz
	$(BIN)/augmentor study $(STUDY)/data/colour-crops.npz --classic $(STUDY_CLASSIC) --per-class 10 --first-seed 3000 --out $(STUDY)/colour-crops-10
	$(BIN)/augmentor study fashion-mnist --per-class 100 --first-seed 4000 --out $(STUDY)/fashion-mnist-100
	$(BIN)/augmentor study $(STUDY)/data/digits.npz --per-class 50 --image-size 28 --no-flip --first-seed 4000 --out $(STUDY)/digits-50
	$(BIN)/augmentor data subset $(STUDY)/data/grey-crops.npz --per-class 30 --image-size 25 --out $(STUDY)/data/grey25 --overwrite
	$(BIN)/augmentor study $(STUDY)/data/grey25 --out $(STUDY)/grey-crops-25px-30pc

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
