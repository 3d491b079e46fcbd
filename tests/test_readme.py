"""Every fenced ```python block of README.md, executed, so none can fall behind the code (the
README once imported `load_run_config` from a module that no longer had it).

Each block runs as a user would run it from a directory holding the runs it names: a block
naming `runs/NAME` finds there a copy of the session's two-step run of that family
(`tiny_runs`), and `photo.jpg` is a small picture. A block that trains would take minutes at its
real settings, so it runs with `tests.conftest.tiny_config`'s instead, by the textual
substitutions of `ADAPTED`, each of which must still match the README (a changed block fails
here rather than silently running something else). A block that cannot run in a test is listed,
with its reason, in `SKIPPED`; none is at present. Tracebacks name README.md's own lines.
"""

import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from cnngen_jax import inference
from tests.conftest import FAMILIES, ROOT, one_device, tiny_config

README = os.path.join(ROOT, "README.md")

# Run directories the README names that are not a family's name -> the family of tiny_runs.
RUNS = {"style": "style_transfer"}
RUN_PATH = re.compile(r"""["']runs/([A-Za-z0-9_]+)["']""")

# A block's distinctive line -> (README text, its replacement), each applied exactly once.
# Replacements keep the line count, so tracebacks still point at the README's lines.
ADAPTED = {
    "train.train_and_evaluate(config, workdir=": [
        ("config = dcgan.get_config()", "config = tiny_config(DATA_DIR, CACHE_DIR, 'dcgan')"),
        ("config.num_train_steps = 300", "config.num_train_steps = 2"),
        ('workdir="/tmp/dcgan"', "workdir=WORKDIR"),
    ],
}

# A block's distinctive line -> why it cannot run in a test.
SKIPPED: dict[str, str] = {}


def python_blocks() -> list[tuple[int, str]]:
    """(first line number, source) of each ```python block of the README."""
    blocks, source, start = [], None, 0
    with open(README, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if source is None and line.rstrip() == "```python":
                source, start = [], number + 1
            elif source is not None and line.rstrip() == "```":
                blocks.append((start, "".join(source)))
                source = None
            elif source is not None:
                source.append(line)
    assert source is None, f"README.md: the ```python block at line {start} is not closed"
    return blocks


BLOCKS = python_blocks()


def matching(table: dict, source: str) -> list:
    return [value for key, value in table.items() if key in source]


def test_the_readme_has_python_blocks_and_every_listed_one_exists():
    assert len(BLOCKS) >= 4
    for table in (ADAPTED, SKIPPED):
        for key in table:
            assert sum(key in source for _, source in BLOCKS) == 1, key


@pytest.mark.parametrize("line,source", BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_python_block_runs(
    line, source, tiny_runs, data_dir, cache_dir, tmp_path, monkeypatch
):
    for reason in matching(SKIPPED, source):
        pytest.skip(reason)
    for substitutions in matching(ADAPTED, source):
        for old, new in substitutions:
            assert source.count(old) == 1, f"README.md:{line}: {old!r} is no longer in the block"
            assert old.count("\n") == new.count("\n")
            source = source.replace(old, new)
    assert "train_and_evaluate" not in source or matching(ADAPTED, source), (
        f"README.md:{line} trains at the config's own settings (minutes): give it tiny "
        "settings in ADAPTED, or say in SKIPPED why it cannot run"
    )

    (tmp_path / "runs").mkdir()
    for name in sorted(set(RUN_PATH.findall(source))):
        family = RUNS.get(name, name)
        assert family in FAMILIES, f"README.md:{line} names runs/{name}: map it to a family in RUNS"
        workdir = tmp_path / "runs" / name
        shutil.copytree(tiny_runs[family], workdir)  # the block may write (evaluation.jsonl)
        config = inference.load_run_config(str(workdir))
        for settings in config.evals.values():  # caches in this test's directory, not in ~
            if "cache_dir" in settings:
                settings.cache_dir = str(tmp_path / "cache")
        (workdir / "config.json").write_text(config.to_json())
    photo = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)

    namespace = {
        "__name__": "__readme__",
        "tiny_config": tiny_config,
        "DATA_DIR": data_dir,
        "CACHE_DIR": cache_dir,
        "WORKDIR": str(tmp_path / "trained"),
    }
    code = compile("\n" * (line - 1) + source, README, "exec")
    with one_device():  # as tiny_runs trained: the compilations are shared
        exec(code, namespace)
