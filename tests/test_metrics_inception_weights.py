"""The pickle-free weights file: round trip, stable hash, clear errors, converter exit codes."""

import sys

import jax
import numpy as np
import pytest
from flax import traverse_util

from cnngen_jax.commands import convert_inception
from cnngen_jax.metrics.inception import abstract_variables
from cnngen_jax.metrics.inception_weights import (
    InceptionWeightsMissing,
    content_sha256,
    load_inception_weights,
    save_inception_weights,
)


def _random_flat(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = traverse_util.flatten_dict(abstract_variables(), sep="/")
    return {key: rng.normal(size=leaf.shape).astype(np.float32) for key, leaf in shapes.items()}


def test_round_trip_and_content_hash(tmp_path):
    flat = _random_flat(0)
    digest = save_inception_weights(flat, "ab" * 32, str(tmp_path / "a.npz"))
    save_inception_weights(dict(reversed(flat.items())), "ab" * 32, str(tmp_path / "b.npz"))
    first, second = (load_inception_weights(tmp_path / name) for name in ("a.npz", "b.npz"))
    assert first.sha256 == second.sha256 == digest and len(digest) == 64
    assert first.source_sha256 == "ab" * 32
    loaded = traverse_util.flatten_dict(first.variables, sep="/")
    assert loaded.keys() == flat.keys()
    assert all(np.array_equal(loaded[key], flat[key]) for key in flat)
    assert jax.tree.structure(first.variables) == jax.tree.structure(abstract_variables())

    changed = dict(flat)
    changed["params/fc/bias"] = flat["params/fc/bias"] + 1
    assert content_sha256(changed) != digest


def test_missing_or_wrong_weights_explain_how_to_provide_them(tmp_path):
    for path in (None, tmp_path / "absent.npz"):
        with pytest.raises(InceptionWeightsMissing, match="Inception metrics skipped: .*convert_"):
            load_inception_weights(path)
    partial = _random_flat(1)
    partial.pop("params/Mixed_7c/branch_pool/conv/kernel")
    np.savez(tmp_path / "partial.npz", **partial)
    with pytest.raises(InceptionWeightsMissing, match="missing .*Mixed_7c/branch_pool"):
        load_inception_weights(tmp_path / "partial.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip")
    with pytest.raises(InceptionWeightsMissing, match="cannot read"):
        load_inception_weights(tmp_path / "garbage.npz")


def test_converter_reports_a_missing_file_without_a_traceback(tmp_path, capsys):
    out = tmp_path / "out.npz"
    assert convert_inception.main([f"--torch_weights={tmp_path / 'no.pth'}", f"--out={out}"]) == 2
    assert capsys.readouterr().err.startswith("error: cannot read PyTorch weights")
    assert not out.exists()


def test_converter_without_pytorch_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"anything")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    out = tmp_path / "out.npz"
    assert convert_inception.main([f"--torch_weights={weights}", f"--out={out}"]) == 2
    assert capsys.readouterr().err.startswith("error: converting the Inception weights needs")
    assert not out.exists()
