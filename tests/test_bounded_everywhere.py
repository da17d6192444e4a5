"""Guards that keep hardening from eroding (issue 25): no input read whole outside ``core.bounded``, no step list
as long as the budget, no direction of length zero, every model-size flag capped before a byte is allocated."""

from __future__ import annotations

import re
import resource
import shutil
import time

import numpy as np
import pytest

from tests.conftest import REPO, make_shapes_folder, run_cli

# Lines allowed to read a file or a stream whole, each with the reason it is safe.
WHOLE_READS_ALLOWED = {
    "augmentor/core/bounded.py": "the bounded readers themselves",
    "augmentor/classic/pipelines.py": "the pipeline file's size is held against PIPELINE_BYTES just before",
    "augmentor/classic/probe.py": "lines the probe's own child writes",
    "augmentor/classic/probe_child.py": "the request its parent writes",
    "augmentor/core/threads.py": "/proc stat files of a few hundred bytes",
    "augmentor/experiments/study.py": "parses the plan text read_text (bounded) returned",
}
WHOLE_READ = re.compile(r"\.read_text\(|\bjson\.loads?\(|\.readlines\(|sys\.stdin\.read|\.read\(\)")


def test_no_input_is_read_whole_outside_the_bounded_readers():
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in [*sorted((REPO / "augmentor").rglob("*.py")), REPO / "cli.py"]
        if path.relative_to(REPO).as_posix() not in WHOLE_READS_ALLOWED
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if WHOLE_READ.search(line)
    ]
    assert found == [], "read these through augmentor.core.bounded (or allow them here with a reason)"
    for allowed in WHOLE_READS_ALLOWED:  # the list names no file that is gone
        assert (REPO / allowed).exists(), allowed


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_a_budget_of_a_trillion_steps_holds_no_step_list(monkeypatch):
    """``train dcgan --steps 10**12`` built a set of every logged step before training (a MemoryError)."""
    import augmentor.generative.train as generative
    from augmentor.data.imageset import ImageSet

    plans = []

    class Planned(Exception):
        pass

    def no_training(task, plan, progress=None):
        plans.append(plan)
        raise Planned

    monkeypatch.setattr(generative, "fit", no_training)
    images = np.random.default_rng(0).integers(0, 256, (8, 1, 28, 28), dtype=np.uint8)
    train = ImageSet(images, np.arange(8) % 2, ["a", "b"])
    for steps in (120, 10**12):  # the first warms the imports and the allocator up
        config = generative.GenerativeConfig(steps=steps, width=4, latent_dim=4, sample_every=70, log_every=50)
        before, started = _peak_rss(), time.monotonic()
        with pytest.raises(Planned):
            generative.train_generative(train, config, None)
    assert time.monotonic() - started < 5 and _peak_rss() - before < 64 << 20
    small, huge = (plan.log_points for plan in plans)
    assert 10**12 in huge and 10**12 - 50 in huge and 10**12 + 50 not in huge and 51 not in huge
    assert {s for s in range(-5, 200) if s in small} == {50, 70, 100, 120}  # what the old set held


def test_an_all_zero_direction_is_refused_at_load(tmp_path):
    from safetensors.torch import load_file, save_file

    weights = REPO / "weights" / "fashion-mnist" / "dcgan"
    out = tmp_path / "directions"
    made = run_cli("directions", weights, "--n", "200", "--out", out)
    assert made.exit_code == 0, made.stderr
    tensors = load_file(str(out / "directions.safetensors"))
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] * 0
    save_file(tensors, str(out / "directions.safetensors"))
    edited = run_cli("edit", weights, "--direction", f"{out}:{name}", "--class", "Bag", "--out", tmp_path / "e.png")
    assert edited.exit_code == 2 and f"direction {name!r} is all zeros" in edited.stderr, edited.stderr
    assert not (tmp_path / "e.png").exists()


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        (["classify", "archs", "--num-classes", "1000000000000"], "AUGMENTOR_MAX_CLASSES"),
        (["classify", "train", "{data}", "--crop-padding", "1000000000", "--out", "{out}"], "--crop-padding"),
        (["train", "dcgan", "{data}", "--width", "1000000000", "--out", "{out}"], "AUGMENTOR_MAX_MODEL_WIDTH"),
        (["train", "vae", "{data}", "--latent-dim", "1000000000", "--out", "{out}"], "--latent-dim"),
        (["gain", "{data}", "--gen-width", "1000000000", "--out", "{out}"], "--gen-width"),
        (
            ["interpolate", "{dcgan}", *["--from", "seed:1", "--to", "seed:2"] * 20, "--frames", "1000"],
            "AUGMENTOR_MAX_GRID_IMAGES",
        ),
    ],
    ids=lambda value: value[1] if isinstance(value, list) else None,
)
def test_every_model_size_flag_is_capped_before_any_allocation(tmp_path, command, mentions):
    names = {"data": make_shapes_folder(tmp_path / "data", per_class=3), "out": tmp_path / "out"}
    names["dcgan"] = REPO / "weights" / "fashion-mnist" / "dcgan"
    argv = [str(part).format(**names) for part in command]
    if argv[0] == "interpolate":
        argv += ["--out", str(tmp_path / "out.png")]
    before = _peak_rss()
    result = run_cli(*argv)
    assert _peak_rss() - before < 100 << 20  # nothing the flag asks for was allocated
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and mentions in errors[0], result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.png").exists()


def test_inspect_draws_no_more_columns_than_the_model_has_maps(tmp_path):
    """``--max-channels 10**9`` made a figure of a billion columns (a MemoryError)."""
    image = next((make_shapes_folder(tmp_path / "data", per_class=1) / "disk").glob("*.png"))
    run = tmp_path / "classifier"
    shutil.copytree(REPO / "weights" / "fashion-mnist" / "classifier", run)
    out = tmp_path / "maps.png"
    result = run_cli("inspect", "activations", run, image, "--max-channels", "1000000000", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert out.stat().st_size > 1000


def test_every_cap_is_in_the_readmes_reliability_table():
    from augmentor.core import limits

    readme = (REPO / "README.md").read_text()
    caps = [value.name for value in vars(limits).values() if isinstance(value, limits.Cap)]
    assert len(caps) > 20
    shorthand = {"PIPELINE_DEPTH": "`_DEPTH`", "PIPELINE_TRANSFORMS": "`_TRANSFORMS`", "PIPELINE_SIDE": "`_SIDE`"}
    missing = [cap for cap in caps if f"`AUGMENTOR_MAX_{cap}`" not in readme and shorthand.get(cap, "?") not in readme]
    assert missing == []
