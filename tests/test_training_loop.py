"""The training floor (augmentor.training): one checkpoint format that a kill at any write leaves resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import augmentor.generative.train as generative_train
import augmentor.training.checkpoint as checkpoint_io
from augmentor.classifiers.train import TrainConfig, read_train_state, train_classifier
from augmentor.generative.train import train_generative
from tests.test_generative import shapes_set, tiny


class Killed(BaseException):
    """A kill at one write: nothing in the library catches a BaseException it did not raise."""


def _writes(monkeypatch: pytest.MonkeyPatch, kill: tuple[int, str] | None = None) -> list[str]:
    """Route every atomic write of a checkpoint through a recorder; ``kill`` = (index, "before"|"after") raises
    ``Killed`` around that write. Returns the recorded file names."""
    names: list[str] = []
    original = checkpoint_io.write_file_atomic

    def recording(path: Path, data: bytes) -> None:
        index = len(names)
        names.append(path.name)
        if kill == (index, "before"):
            raise Killed
        original(path, data)
        if kill == (index, "after"):
            raise Killed

    monkeypatch.setattr(checkpoint_io, "write_file_atomic", recording)
    monkeypatch.setattr(generative_train, "write_file_atomic", recording)
    return names


def _kill_points(names: list[str]) -> list[tuple[int, str]]:
    """Before every write of the second checkpoint (its tensors through its commit), and after its commit."""
    starts = [i for i, name in enumerate(names) if name.startswith("state-")]
    first, commit = starts[1], names.index("state.json", starts[1])
    return [(i, "before") for i in range(first, commit + 1)] + [(commit, "after")]


def test_a_classifier_killed_at_any_checkpoint_write_resumes_bit_identically(shapes_splits, tmp_path, monkeypatch):
    from augmentor.data.readers import open_dataset

    train = open_dataset(str(shapes_splits)).train
    config = TrainConfig(steps=8, batch_size=16, evals=4, ema=0.9)
    names = _writes(monkeypatch)
    whole = train_classifier(train, config, checkpoint_dir=tmp_path / "whole").model.state_dict()
    points = _kill_points(names)
    assert len(points) == 3  # tensors, state.json (the commit), and after the commit
    for number, kill in enumerate(points):
        run = tmp_path / f"killed-{number}"
        _writes(monkeypatch, kill)
        with pytest.raises(Killed):
            train_classifier(train, config, checkpoint_dir=run)
        monkeypatch.undo()
        state = json.loads((run / "state.json").read_text())
        assert (run / state["tensors"]).is_file() and state["step"] in (2, 4), kill
        resumed = train_classifier(train, config, checkpoint_dir=run, resume=read_train_state(run))
        assert all(torch.equal(whole[k], v) for k, v in resumed.model.state_dict().items()), kill


@pytest.mark.parametrize("kind", ["dcgan", "vae"])
def test_a_generator_killed_at_any_checkpoint_write_resumes_bit_identically(tmp_path, monkeypatch, kind):
    data = shapes_set()
    config = tiny(kind, steps=9, sample_every=3)
    names = _writes(monkeypatch)
    train_generative(data, config, tmp_path / "whole")
    points = _kill_points(names)
    # tensors, the sampling weights, metrics.jsonl, losses.png, state.json (the commit), and after the commit
    assert len(points) == 6, names
    expected = (tmp_path / "whole" / "model.safetensors").read_bytes()
    for number, kill in enumerate(points):
        run = tmp_path / f"killed-{number}"
        _writes(monkeypatch, kill)
        with pytest.raises(Killed):
            train_generative(data, config, run)
        monkeypatch.undo()
        assert json.loads((run / "state.json").read_text())["step"] in (3, 6), kill
        train_generative(data, config, run, resume=True)
        assert (run / "model.safetensors").read_bytes() == expected, kill
        logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in logged] == [3, 6, 9], kill
