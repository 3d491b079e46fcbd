"""The benchmarks/ harnesses: the report on a tiny case, one fresh-process probe, the PyTorch
reference and the seed scaling (tests/test_package.py: the package never imports them)."""

import functools
import json
import math

import jax
import jax.numpy as jnp
import pytest

from benchmarks import processes, report, seeds, torch_reference, train_speed
from benchmarks.timing import Settings
from cnngen_jax.configs import dcgan
from cnngen_jax.errors import UserError
from cnngen_jax.models import ModelSpec, get_model
from tests.conftest import one_device, reference

TINY_CASE = "dcgan-16-b16"


def _numbers(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _numbers(value)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield tree


def test_report_has_every_figure_positive_and_finite(data_dir):
    settings = Settings(
        repeats=2, min_window_s=0.05, pipeline_s=0.2, subprocesses=False, data_dir=data_dir
    )
    with one_device():
        result = train_speed.benchmark([TINY_CASE, "nosuch"], settings, "cmd")
    result = json.loads(json.dumps(result))

    assert result["skipped"] == ["nosuch"]
    assert result["command"] == "cmd"
    assert {"cpu_model", "cpu_count", "jax", "torch", "jax_devices", "date_utc"} <= set(
        result["machine"]
    )
    case = result["cases"][TINY_CASE]
    torch_layouts = list(torch_reference.TORCH_LAYOUTS)
    impls = ["jax", "jax_fixed_batch"] + (torch_layouts if result["machine"]["torch"] else [])
    assert list(case["train"]) == impls
    for figures in case["train"].values():
        assert len(figures["window_steps_per_s"]) == 2
        assert figures["images_per_s"] == pytest.approx(16 * figures["steps_per_s"])
    assert set(case["pipeline"]) == {
        "alone_images_per_s",
        "during_training_images_per_s",
        "training_steps_per_s_during",
    }
    feed = case["feed"]
    assert (feed["placement"], feed["steps_per_dispatch"]) == ("device", 1)
    fed, fixed = (case["train"][name]["steps_per_s"] for name in ("jax", "jax_fixed_batch"))
    assert feed["efficiency"] == pytest.approx(fed / fixed)
    numbers = list(_numbers(case))
    assert numbers and all(math.isfinite(x) and x > 0 for x in numbers)
    assert TINY_CASE in report.format_report(result)


@pytest.mark.e2e
def test_fresh_jax_process_reports_compile_start_and_memory(data_dir, tmp_path):
    args = {"case": TINY_CASE, "data_dir": data_dir, "cache_dir": str(tmp_path), "steps": 2}
    result = processes.spawn("benchmarks.train_speed", [f"--probe={json.dumps(args)}"])

    phases = result["phases_s"]
    assert list(phases) == ["imported", "data_ready", "state_ready", "compiled", "first_step"]
    assert sorted(phases.values()) == list(phases.values())
    assert result["start_to_first_step_s"] == phases["first_step"]
    assert 0 < result["compile_s"] < phases["compiled"]
    assert 100 < result["peak_rss_mib"] < 8192  # its own high-water mark, not this process's


def _flax_parameter_counts(image_size: int, channels: int) -> tuple[int, int]:
    models = get_model("dcgan", "gan")(dcgan.get_config().model, ModelSpec(image_size, channels))
    key = jax.random.key(0)
    z = jnp.zeros((1, models.latent_dim))
    images = jnp.zeros((1, image_size, image_size, channels))
    counts = []
    for net, x in ((models.generator, z), (models.discriminator, images)):
        params = jax.eval_shape(functools.partial(net.init, train=False), key, x)["params"]
        counts.append(sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params)))
    return tuple(counts)


@pytest.mark.torch
def test_torch_reference_is_our_dcgan_and_iterates():
    reference("torch")
    from tests import torch_dcgan

    model = torch_dcgan.build(64, 3)
    torch_counts = tuple(torch_dcgan.parameter_count(n) for n in (model.netG, model.netD))
    assert torch_counts == (3_576_704, 2_765_568) == _flax_parameter_counts(64, 3)

    d_loss, g_loss = model.step(torch_dcgan.torch.rand(4, 3, 64, 64) * 2 - 1)
    assert math.isfinite(d_loss) and math.isfinite(g_loss)
    args = {"image_size": 16, "channels": 1, "batch_size": 8, "steps": 1, "channels_last": True}
    result = torch_dcgan.probe(args)  # the fresh-process probe's body, in this process
    assert list(result["marks"]) == ["imported", "built", "first_step"]
    assert result["max_rss_kib"] > 0


def test_seed_scaling_reports_replica_throughput_against_one_seed(data_dir):
    settings = Settings(repeats=2, min_window_s=0.01, data_dir=data_dir)
    with one_device():
        result = seeds.seed_scaling("vae-16-b16@model.width=8", [1, 2], settings)
    one, two = result["by_num_seeds"][1], result["by_num_seeds"][2]
    assert one["vs_separate_runs"] == pytest.approx(1.0)
    assert two["replica_images_per_s"] == pytest.approx(2 * 16 * two["steps_per_s"])
    assert two["vs_separate_runs"] == pytest.approx(
        two["replica_images_per_s"] / one["replica_images_per_s"]
    )
    assert "| 2 |" in seeds.format_rows([result])
    assert seeds.seed_counts("8,4,4") == [1, 4, 8]  # separate runs: K = 1, always
    with pytest.raises(UserError, match="--num_seeds=0,2 must be numbers of at least 1"):
        seeds.seed_counts("0,2")
