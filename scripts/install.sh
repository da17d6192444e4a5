#!/usr/bin/env bash
# The project's virtual environment, sized for the machine: on a machine with no NVIDIA GPU, torch's CPU build
# (about 0.2 GB instead of the CUDA build's 5.5 GB) when PyTorch's CPU wheel index answers; otherwise the pinned
# build pyproject.toml names. Every step says what it does, and pip shows its progress.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
CPU_INDEX=https://download.pytorch.org/whl/cpu

step() { printf '\n==> %s\n' "$*" >&2; }

step "creating $VENV with $($PYTHON --version 2>&1)"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    step "an NVIDIA GPU is present: torch's CUDA build (several GB; pip's progress below)"
elif [ "$(uname -m)" = x86_64 ] && curl -sf --max-time 5 -o /dev/null "$CPU_INDEX/torch/"; then
    step "no NVIDIA GPU: torch's CPU build from $CPU_INDEX"
    # The versions pyproject.toml pins; the +cpu local build satisfies its == pins, so the next step keeps it.
    pins=$(grep -oE '"(torch|torchvision)==[0-9.]+; platform_machine == .x86_64.' pyproject.toml | cut -d'"' -f2 | cut -d';' -f1)
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install --progress-bar on --index-url "$CPU_INDEX" $pins
else
    step "no NVIDIA GPU, but PyTorch's CPU index does not answer: the pinned build from PyPI or the local disk"
    step "(on x86_64 that is the CUDA build, about 5.5 GB; it runs on the CPU)"
fi

step "installing augmentor and its dependencies (pip's progress below)"
"$VENV/bin/python" -m pip install --progress-bar on -e '.[dev]'
"$VENV/bin/python" -c 'import torch; print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")' >&2
