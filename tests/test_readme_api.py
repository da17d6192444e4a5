"""The README's Python API session runs as written, and the top-level names stay lazy."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from tests.conftest import REPO


def _library_cells() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Library\n") : text.index("## Development\n")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_notebook_runs_cell_by_cell_and_writes_the_enlarged_dataset(tmp_path, monkeypatch):
    cells = _library_cells()
    assert len(cells) >= 5
    (tmp_path / "weights").symlink_to(REPO / "weights", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for cell in cells:
        exec(compile(cell, "README.md", "exec"), namespace)  # one shared namespace, as a notebook has
    assert namespace["small"].images.shape == (200, 1, 28, 28)
    assert len(namespace["classic"].expanded) == 600
    assert namespace["model"].evaluate(namespace["dataset"].test)["accuracy"] > 0.5  # 10 classes: chance is 0.1
    lines = (tmp_path / "enlarged" / "manifest.jsonl").read_text().splitlines()
    sources = {json.loads(line)["source"] for line in lines}
    assert len(lines) == 800 and sources == {"real", "classic", "vae"}


def test_import_augmentor_is_light_and_names_resolve_to_their_modules():
    script = (
        "import sys, augmentor\n"
        "assert 'torch' not in sys.modules and 'numpy' not in sys.modules\n"
        "from augmentor import UserError, Generator\n"
        "assert Generator.__module__ == 'augmentor.generative.generator'\n"
        "assert set(augmentor.__all__) <= set(dir(augmentor))\n"
        "try:\n    augmentor.nonexistent\nexcept AttributeError as e:\n    print(e)\n"
    )
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
    assert "has no attribute 'nonexistent'" in result.stdout
