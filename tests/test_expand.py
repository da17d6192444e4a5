"""``augmentor expand``: quotas per class and source, provenance, reproducibility, quality gates, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset
from augmentor.synthetic.expand import ExpandConfig, parse_ratio, split_quota, synthetic_quotas
from augmentor.synthetic.gates import dedupe_mask
from augmentor.synthetic.sources import parse_source
from tests.conftest import REPO, files_under, make_shapes_folder, run_cli

FAST = ("--workers", "1", "--device", "cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Grey 28×28 shapes with train/ and test/; train has 6 disks, 4 squares, 6 triangles."""
    root = make_shapes_folder(tmp_path_factory.mktemp("expand") / "data", per_class=6, splits=True, seed=2)
    for name in ("square000.png", "square001.png"):
        (root / "train" / "square" / name).unlink()
    return root


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory) -> dict[str, Path]:
    """Tiny DCGAN and VAE runs on ``data``'s train split, plus doctored copies for the mismatch errors."""
    from augmentor.generative.train import GenerativeConfig, train_generative

    base = tmp_path_factory.mktemp("runs")
    train = open_dataset(str(data), ReadOptions()).train
    found = {}
    for kind in ("dcgan", "vae"):
        config = GenerativeConfig(kind=kind, steps=5, width=8, sample_every=5, device="cpu")
        train_generative(train, config, base / kind)
        found[kind] = base / kind
    for name, change in {
        "other_classes": {"class_names": ["disk", "square", "star"]},
        "unconditional": {"conditional": False},
    }.items():
        shutil.copytree(base / "dcgan", base / name)
        config = json.loads((base / name / "config.json").read_text())
        (base / name / "config.json").write_text(json.dumps({**config, **change}))
        found[name] = base / name
    return found


def expand(data: Path, out: Path, *args: str):
    return run_cli("expand", data, "--out", out, *FAST, *args)


def synthetic_counts(out: Path) -> dict[str, dict[str, int]]:
    per_class = json.loads((out / "dataset.json").read_text())["splits"]["train"]["per_class"]
    return {c: {s: n for s, n in sources.items() if s != "real"} for c, sources in per_class.items()}


def test_per_class_fills_every_class_split_evenly_over_sources(data, runs, tmp_path):
    out = tmp_path / "out"
    dcgan, vae = f"dcgan:{runs['dcgan']}", f"vae:{runs['vae']}"
    result = expand(data, out, "--per-class", "9", "--with", "classic", "--with", dcgan, "--with", vae, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["dropped"] == {} and document["shortfall"] == {}
    summary = json.loads((out / "dataset.json").read_text())
    # 3 / 5 / 3 synthetic images; the remainder goes to the earlier sources.
    assert summary["splits"]["train"]["per_class"] == {
        "disk": {"classic": 1, "dcgan": 1, "real": 6, "vae": 1},
        "square": {"classic": 2, "dcgan": 2, "real": 4, "vae": 1},
        "triangle": {"classic": 1, "dcgan": 1, "real": 6, "vae": 1},
    }
    assert summary["splits"]["test"]["per_class"] == {c: {"real": 6} for c in ("disk", "square", "triangle")}
    section = summary["expand"]
    assert [s["name"] for s in section["sources"]] == ["classic", dcgan, vae]
    assert section["sources"][1]["quota"] == {"disk": 1, "square": 2, "triangle": 1}
    assert section["sources"][1]["trained_on_src"] is True

    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    on_disk = {p for p in files_under(out) if p.endswith(".png")}
    assert {r["path"] for r in records} == on_disk and len(records) == len(on_disk) == 27 + 18
    for record in records:
        assert hashlib.sha256((out / record["path"]).read_bytes()).hexdigest() == record["sha256"]
        assert record["path"].split("/")[2].startswith(record["source"] + "-")
        if record["source"] in ("dcgan", "vae"):
            assert record["run_id"].startswith(record["source"] + ":") and isinstance(record["latent_index"], int)
        if record["source"] == "classic":
            assert record["pipeline"] == "medium" and record["parent"].startswith("train/")
    assert Counter(r["source"] for r in records if r["split"] == "test") == {"real": 18}
    # The test split is carried over pixel for pixel.
    original, written = open_dataset(str(data), ReadOptions()), open_dataset(str(out), ReadOptions())
    assert np.array_equal(original.test.images, written.test.images)


def test_ratio_and_classes_already_full(data, runs, tmp_path):
    result = expand(data, tmp_path / "ratio", "--ratio", "1:2", "--with", "classic", "--with", f"vae:{runs['vae']}")
    assert result.exit_code == 0, result.stderr
    assert synthetic_counts(tmp_path / "ratio") == {
        "disk": {"classic": 6, "vae": 6},
        "square": {"classic": 4, "vae": 4},
        "triangle": {"classic": 6, "vae": 6},
    }
    result = expand(data, tmp_path / "full", "--per-class", "6", "--with", f"vae:{runs['vae']}")
    assert result.exit_code == 0, result.stderr
    assert synthetic_counts(tmp_path / "full") == {"disk": {}, "square": {"vae": 2}, "triangle": {}}
    message = " ".join(result.stderr.split())
    assert "already at --per-class 6" in message and "disk (6)" in message and "triangle (6)" in message


def test_same_seed_same_bytes(data, runs, tmp_path):
    def digests(out: Path, seed: str) -> list[str]:
        args = ("--per-class", "8", "--with", "classic", "--with", f"dcgan:{runs['dcgan']}", "--seed", seed)
        assert expand(data, out, *args).exit_code == 0
        return sorted(json.loads(line)["sha256"] for line in (out / "manifest.jsonl").read_text().splitlines())

    first = digests(tmp_path / "a", "3")
    assert digests(tmp_path / "b", "3") == first
    assert digests(tmp_path / "c", "4") != first


def test_min_confidence_drops_and_reports(data, runs, tmp_path):
    vae = f"vae:{runs['vae']}"
    # A classifier after 2 steps is nowhere near 99 % sure: everything is dropped, the budget ends the rounds.
    strict = ("--per-class", "8", "--with", vae, "--min-confidence", "0.99", "--confidence-steps", "2", "--json")
    result = expand(data, tmp_path / "strict", *strict)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["dropped"]["min_confidence"][vae] > 0
    assert document["shortfall"][vae]["square"] > 0
    assert "short of its quota" in result.stderr
    source = json.loads((tmp_path / "strict" / "dataset.json").read_text())["expand"]["sources"][0]
    assert source["generated"] == {c: 8 * n for c, n in source["quota"].items()}  # the round limit, no more
    assert source["dropped"]["min_confidence"] == sum(source["generated"].values()) - sum(source["kept"].values())

    lenient = ("--per-class", "8", "--with", vae, "--min-confidence", "1e-9", "--confidence-steps", "2")
    result = expand(data, tmp_path / "lenient", *lenient)
    assert result.exit_code == 0, result.stderr
    assert "dropped by --min-confidence: 0" in result.stdout
    assert synthetic_counts(tmp_path / "lenient") == {"disk": {"vae": 2}, "square": {"vae": 4}, "triangle": {"vae": 2}}


def test_dedupe_gate_drops_copies_and_keeps_noise(data):
    real = open_dataset(str(data), ReadOptions()).train
    copies = real.take(np.arange(len(real)))
    assert not dedupe_mask(copies, real, 0.01, "cpu").any()
    assert dedupe_mask(copies, real, 0.0, "cpu").all()
    noise = real.take(np.arange(len(real)))
    noise.images = np.random.default_rng(0).integers(0, 256, size=real.images.shape, dtype=np.uint8)
    assert dedupe_mask(noise, real, 0.01, "cpu").all()


def test_dedupe_beyond_any_distance_drops_everything(data, tmp_path):
    result = expand(data, tmp_path / "out", "--per-class", "7", "--with", "classic", "--dedupe", "2", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    source = json.loads((tmp_path / "out" / "dataset.json").read_text())["expand"]["sources"][0]
    assert document["dropped"]["dedupe"]["classic"] == sum(source["generated"].values()) > 0
    assert synthetic_counts(tmp_path / "out") == {"disk": {}, "square": {}, "triangle": {}}


def test_quota_helpers():
    counts = np.array([6, 4, 0])
    assert synthetic_quotas(counts, ExpandConfig(per_class=5)).tolist() == [0, 1, 5]
    assert synthetic_quotas(counts, ExpandConfig(ratio="2:1")).tolist() == [3, 2, 0]
    assert split_quota(np.array([3, 5, 0]), 3).tolist() == [[1, 2, 0], [1, 2, 0], [1, 1, 0]]
    assert parse_ratio("1:4") == (1.0, 4.0)
    assert parse_source("classic").arg == "medium" and parse_source("vae:runs/v").arg == "runs/v"


BAD = {
    "unknown kind": (["--per-class", "8", "--with", "gan:x"], "unknown source kind 'gan'; known: classic"),
    "not a run": (["--per-class", "8", "--with", "dcgan:{tmp}/nope"], "not a run folder"),
    "wrong kind": (["--per-class", "8", "--with", "dcgan:{vae}"], "is a vae run"),
    "classes": (["--per-class", "8", "--with", "dcgan:{other_classes}"], "only in SRC: ['triangle']"),
    # SRC read at 32 px against a 28 px run (a hand-edited image_shape is refused earlier, by the config check)
    "shape": (
        ["--per-class", "8", "--with", "dcgan:{dcgan}", "--image-size", "32"],
        "1×28×28 images (C×H×W) but SRC's are 1×32×32",
    ),
    "unconditional": (["--per-class", "8", "--with", "dcgan:{unconditional}"], "unconditional"),
    "pipeline": (["--per-class", "8", "--with", "classic:{tmp}/none.yaml"], "--with classic:"),
    "p zero": (["--per-class", "8", "--with", "classic", "--min-confidence", "0"], "--min-confidence 0.0"),
    "p above 1": (["--per-class", "8", "--with", "classic", "--min-confidence", "1.5"], "0 < p ≤ 1"),
    "d negative": (["--per-class", "8", "--with", "classic", "--dedupe", "-0.1"], "--dedupe -0.1"),
    "neither": (["--with", "classic"], "exactly one of --per-class"),
    "both": (["--per-class", "8", "--ratio", "1:4", "--with", "classic"], "exactly one of --per-class"),
    "ratio dash": (["--ratio", "1-4", "--with", "classic"], "--ratio '1-4'"),
    "ratio zero": (["--ratio", "0:4", "--with", "classic"], "REAL:SYNTH"),
    "ratio words": (["--ratio", "a:b", "--with", "classic"], "REAL:SYNTH"),
    "no source": (["--per-class", "8"], "give at least one source"),
    "twice": (["--per-class", "8", "--with", "classic", "--with", "classic"], "given twice"),
    "strength": (["--per-class", "8", "--with", "vae-extrapolate:{vae}:0"], "strength must be a number > 0"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_with_one_line(case, data, runs, tmp_path):
    args, expected = BAD[case]
    names = {"tmp": str(tmp_path), **{k: str(v) for k, v in runs.items()}}
    result = expand(data, tmp_path / "out", *(a.format(**names) for a in args))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in " ".join(result.stderr.split()), result.stderr
    assert not (tmp_path / "out").exists()


def test_help_imports_nothing_heavy():
    probe = (
        "import sys, cli\n"
        "sys.argv = ['augmentor', 'expand', '--help']\n"
        "try:\n    cli.app(prog_name='augmentor')\nexcept SystemExit as exit:\n    assert exit.code == 0\n"
        "print('HEAVY:' + ','.join(m for m in ('torch', 'albumentations', 'numpy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert "--min-confidence" in result.stdout and result.stdout.strip().splitlines()[-1] == "HEAVY:"


def test_vae_jitter_source_makes_variations_of_each_real_parent(data, runs, tmp_path):
    out = tmp_path / "jitter"
    result = expand(data, out, "--per-class", "8", "--with", f"vae-jitter:{runs['vae']}:0.2")
    assert result.exit_code == 0, result.stderr
    assert synthetic_counts(out) == {
        "disk": {"vae-jitter": 2},
        "square": {"vae-jitter": 4},
        "triangle": {"vae-jitter": 2},
    }
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    jittered = [r for r in records if r["source"] == "vae-jitter"]
    real_paths = {r["origin"] for r in records if r["source"] == "real"}  # parents name the source file
    assert all(r["parent"] in real_paths and r["pipeline"] is None and r["sigma"] == 0.2 for r in jittered)
    # Parents are drawn evenly: the four square copies come from the four square images.
    assert len({r["parent"] for r in jittered if r["class"] == "square"}) == 4
    wrong = expand(data, tmp_path / "wrong", "--per-class", "8", "--with", f"vae-jitter:{runs['dcgan']}")
    assert wrong.exit_code == 2 and "is a dcgan run" in wrong.stderr


def test_vae_extrapolate_source_moves_real_codes_away_from_same_class_neighbours(data, runs, tmp_path):
    out = tmp_path / "extrapolated"
    result = expand(data, out, "--per-class", "8", "--with", f"vae-extrapolate:{runs['vae']}")
    assert result.exit_code == 0, result.stderr
    assert synthetic_counts(out) == {
        "disk": {"vae-extrapolate": 2},
        "square": {"vae-extrapolate": 4},
        "triangle": {"vae-extrapolate": 2},
    }
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    moved = [r for r in records if r["source"] == "vae-extrapolate"]
    class_of = {r["origin"]: r["class"] for r in records if r["source"] == "real"}  # parents name the source file
    for record in moved:
        assert record["strength"] == 0.5 and record["pipeline"] is None and record["run_id"].startswith("vae:")
        assert class_of[record["parent"]] == class_of[record["neighbour"]] == record["class"]
        assert record["neighbour"] != record["parent"]
    assert len({r["parent"] for r in moved if r["class"] == "square"}) == 4
    source = json.loads((out / "dataset.json").read_text())["expand"]["sources"][0]
    assert source["strength"] == 0.5
    wrong = expand(data, tmp_path / "wrong", "--per-class", "8", "--with", f"vae-extrapolate:{runs['dcgan']}")
    assert wrong.exit_code == 2 and "is a dcgan run" in wrong.stderr


def test_edit_source_moves_fresh_samples_along_a_direction(data, runs, tmp_path):
    directions = tmp_path / "dirs"
    made = run_cli(
        "directions",
        runs["dcgan"],
        "--by",
        "attribute:ink_area",
        "--method",
        "mean-diff",
        "--n",
        "64",
        "--out",
        directions,
    )
    assert made.exit_code == 0, made.stderr
    out = tmp_path / "edited"
    result = expand(data, out, "--per-class", "8", "--with", f"edit:{runs['dcgan']}:{directions}:ink_area:-2,2")
    assert result.exit_code == 0, result.stderr
    assert synthetic_counts(out) == {"disk": {"edit": 2}, "square": {"edit": 4}, "triangle": {"edit": 2}}
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    edits = sorted((r["direction"], r["strength"], r["pipeline"]) for r in records if r["source"] == "edit")
    assert edits == [("ink_area", -2.0, None)] * 4 + [("ink_area", 2.0, None)] * 4
    unknown = expand(data, tmp_path / "x", "--per-class", "8", "--with", f"edit:{runs['dcgan']}:{directions}:nope:1")
    assert unknown.exit_code == 2 and "no direction 'nope'" in unknown.stderr and "--with edit:" in unknown.stderr
    malformed = expand(data, tmp_path / "y", "--per-class", "8", "--with", f"edit:{runs['dcgan']}")
    assert malformed.exit_code == 2 and "edit:RUN:DIR:NAME:STRENGTHS" in malformed.stderr


def test_recipe_best_expands_with_the_recipes_sources_and_says_how_to_train(data, runs, tmp_path):
    from augmentor.synthetic.recipes import load_recipe, recipe_sources

    best = load_recipe("best")
    out = tmp_path / "recipe"
    result = expand(data, out, "--per-class", "8", "--recipe", f"best:{runs['vae']}")
    assert result.exit_code == 0, result.stderr
    kinds = {source.split(":")[0] for source in best.sources}
    assert {s for counts in synthetic_counts(out).values() for s in counts} == kinds
    assert f"--synthetic {out} --synthetic-share {best.share:g}" in result.stderr
    # The same images as naming the sources with --with.
    same = expand(
        data,
        tmp_path / "with",
        "--per-class",
        "8",
        *(a for s in recipe_sources(f"best:{runs['vae']}") for a in ("--with", s)),
    )
    assert same.exit_code == 0
    pngs = sorted(p for p in files_under(out) if p.endswith(".png"))
    assert pngs == sorted(p for p in files_under(tmp_path / "with") if p.endswith(".png"))
    assert all((out / p).read_bytes() == (tmp_path / "with" / p).read_bytes() for p in pngs)
    for bad, message in (("best", "name the run"), ("nope:x", "--recipe 'nope' is neither a built-in recipe (best)")):
        refused = expand(data, tmp_path / "bad", "--per-class", "8", "--recipe", bad)
        assert refused.exit_code == 2 and message in refused.stderr
        assert not (tmp_path / "bad").exists()


def test_a_model_trained_on_other_images_than_src_is_a_leakage_warning(data, runs, tmp_path):
    """Issue 12 item 11: `expand SUBSET --with vae:RUN` with a VAE of the whole dataset used to say nothing."""
    subset = tmp_path / "subset"
    made = run_cli("data", "subset", data, "--per-class", "3", "--seed", "1", "--out", subset)
    assert made.exit_code == 0, made.stderr
    result = expand(subset, tmp_path / "out", "--per-class", "5", "--with", f"vae:{runs['vae']}")
    assert result.exit_code == 0, result.stderr
    message = " ".join(result.stderr.split())
    assert "leakage: --with vae:" in message and "trained on other images than SRC's train split" in message
    recorded = json.loads((tmp_path / "out" / "dataset.json").read_text())["expand"]["warnings"]
    assert any(w.startswith("leakage: --with vae:") for w in recorded)
    same = expand(data, tmp_path / "same", "--per-class", "7", "--with", f"vae:{runs['vae']}")  # its own data
    assert same.exit_code == 0 and "leakage" not in same.stderr


def test_a_path_list_reaching_into_a_test_folder_is_a_leakage_warning(data, tmp_path):
    paths = sorted(str(p) for p in data.rglob("*.png"))  # what `find DATA -name '*.png'` pipes
    result = run_cli("classic", "-", "--per-image", "1", "--out", tmp_path / "all", input="\n".join(paths) + "\n")
    assert result.exit_code == 0, result.stderr
    message = " ".join(result.stderr.split())
    assert "leakage: 18 of 34 listed images lie under a test/ folder" in message
    recorded = json.loads((tmp_path / "all" / "dataset.json").read_text())["warnings"]
    assert recorded and recorded[0].startswith("leakage: 18 of 34")
    train_only = "\n".join(p for p in paths if "/train/" in p) + "\n"
    clean = run_cli("classic", "-", "--per-image", "1", "--out", tmp_path / "train", input=train_only)
    assert clean.exit_code == 0 and "leakage" not in clean.stderr


def test_a_recipe_file_is_what_gain_and_expand_take_and_a_bad_one_is_one_line(data, runs, tmp_path):
    from augmentor.experiments.gain import GainConfig, with_recipe
    from augmentor.synthetic.recipes import Recipe, load_recipe, recipe_sources, write_recipe

    made = Recipe("mine", "vae-jitter:0.5@soft", 0.25, gen_steps=40, gen_width=16, chosen_on="a test")
    path = tmp_path / "recipe.json"
    write_recipe(path, made)
    assert load_recipe(str(path)) == made  # the round trip
    assert load_recipe("best") == Recipe(**{**load_recipe("best").__dict__})  # the built-in is such a file too
    config = with_recipe(GainConfig(recipe=str(path)))
    assert config.arms == "real,real-long,classic:light,vae-jitter:0.5@soft" and config.synthetic_share == (0.25,)
    assert (config.gen_steps, config.gen_width) == (40, 16)
    given = with_recipe(GainConfig(recipe=str(path), arms="real,vae", synthetic_share=(0.5,), gen_steps=7))
    assert (given.arms, given.synthetic_share, given.gen_steps) == ("real,vae", (0.5,), 7)  # given flags win
    assert recipe_sources(f"{path}:{runs['vae']}") == [f"vae-jitter:{runs['vae']}:0.5"]
    out = tmp_path / "expanded"
    result = expand(data, out, "--per-class", "8", "--recipe", f"{path}:{runs['vae']}")
    assert result.exit_code == 0, result.stderr
    assert "--synthetic-share 0.25" in result.stderr
    for document, field in (('{"format": 1, "arm": "vae", "share": 2}', "share"), ("[1", "not a readable recipe")):
        path.write_text(document)
        refused = expand(data, tmp_path / "bad", "--per-class", "8", "--recipe", f"{path}:{runs['vae']}")
        assert refused.exit_code == 2 and str(path) in refused.stderr and field in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


def test_no_flip_keeps_classic_sources_from_mirroring(data, tmp_path):
    """A pipeline that only mirrors: with --no-flip every copy is its parent, pixel for pixel; without, some
    (the asymmetric shapes) are not."""
    import albumentations as A

    pipe = tmp_path / "flip.yaml"
    A.save(A.Compose([A.HorizontalFlip(p=1.0)]), str(pipe), data_format="yaml")
    same = {}
    for name, extra in (("mirrored", ()), ("kept", ("--no-flip",))):
        result = expand(data, tmp_path / name, "--with", f"classic:{pipe}", "--ratio", "1:1", *extra)
        assert result.exit_code == 0, result.stderr
        records = [json.loads(line) for line in (tmp_path / name / "manifest.jsonl").read_text().splitlines()]
        real = {r["origin"]: r["sha256"] for r in records if r["source"] == "real"}
        copies = [r for r in records if r["source"] == "classic"]
        same[name] = [real[r["parent"]] == r["sha256"] for r in copies]
    assert all(same["kept"]) and len(same["kept"]) == 16 and not all(same["mirrored"])
