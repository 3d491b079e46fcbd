"""Fast neural style transfer: the TransformerNet and the content and style losses against
pytorch/examples' `fast_neural_style` (PyTorch, random VGG16 weights), held-out evaluation, and
`cnngen_jax.transforming` (`commands.stylize`) on a user's image, bad input and settings
included. (Two steps, 1 vs 8 devices: the contract tests.)"""

import json
import os
import subprocess
import sys

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from cnngen_jax import data, inference, train
from cnngen_jax.configs import style_transfer
from cnngen_jax.errors import UserError
from cnngen_jax.models import vgg
from cnngen_jax.models.transformer_net import TransformerNet
from cnngen_jax.tasks import create_task
from cnngen_jax.transforming import transform_file, transform_image
from tests.conftest import (
    ROOT,
    evaluator_of,
    init_state,
    random_vgg_weights,
    reference,
    tiny_config,
)


def photo(path, size=(21, 13), mode="RGB", seed=1) -> str:
    """A random image file of `size` (width, height)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return str(path)


def flax_params_from_torch(state_dict) -> dict:
    """pytorch/examples' TransformerNet state dict as our parameters: `a.b.conv2d.weight`
    (OIHW) -> a/b/conv2d/kernel (HWIO), an instance norm's `weight` -> `scale`."""
    flat = {}
    for key, value in state_dict.items():
        *path, leaf = key.split(".")
        value = value.detach().numpy()
        if leaf == "weight":
            leaf, value = (
                ("kernel", value.transpose(2, 3, 1, 0)) if value.ndim == 4 else ("scale", value)
            )
        flat[(*path, leaf)] = value
    return flax.traverse_util.unflatten_dict(flat)


@pytest.mark.torch
def test_transformer_net_matches_pytorch(data_dir):
    torch = reference("torch")
    from tests.torch_style_references import TransformerNet as TorchTransformerNet

    torch.manual_seed(0)
    theirs = TorchTransformerNet().eval()
    count = sum(p.numel() for p in theirs.parameters())
    assert count == 1_679_235
    ours = TransformerNet()
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 20, 24, 3)).astype(np.float32)
    initial = ours.init(jax.random.key(0), jnp.asarray(pixels))["params"]
    assert sum(x.size for x in jax.tree.leaves(initial)) == count
    params = flax_params_from_torch(theirs.state_dict())
    assert jax.tree.map(np.shape, params) == jax.tree.map(np.shape, initial)

    def run_theirs(pixels):
        with torch.no_grad():
            output = theirs(torch.from_numpy(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))))
        return output.numpy().transpose(0, 2, 3, 1)

    expected = run_theirs(pixels)
    got = jax.jit(lambda params, x: ours.apply({"params": params}, x))(params, pixels)
    assert got.shape == (2, 20, 24, 3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected).max())

    # The task feeds it pixels and maps its output back to [-1, 1]; other sizes are padded by
    # reflection to a multiple of 4 and cropped back.
    config = tiny_config(data_dir, family="style_transfer", **{"model.width": 32})
    config.model.num_blocks = 5
    task = create_task(config, data.dataset_info("photos"))
    odd = pixels[:, :18, :22]
    padded = np.pad(odd, ((0, 0), (0, 2), (0, 2), (0, 0)), mode="reflect")
    expected = run_theirs(padded)[:, :18, :22] / 127.5 - 1
    got = jax.jit(task._transform)(params, jnp.asarray(odd / 127.5 - 1))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


CONVS = tuple(n for n in vgg.layer_names("vgg16") if n.startswith("conv"))
JOHNSON_STYLE_LAYERS = {"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0}


def torch_vgg16(torch, weights_file: str):
    """pytorch/examples' Vgg16 with the converted file's weights (HWIO -> OIHW), in float64."""
    from tests.torch_style_references import Vgg16

    params = vgg.load_vgg(weights_file, "vgg16")
    model = Vgg16().double().eval()
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        for conv, name in zip(convs, CONVS[:10], strict=True):  # up to conv4_3
            conv.weight.copy_(torch.from_numpy(params[name]["kernel"].transpose(3, 2, 0, 1)))
            conv.bias.copy_(torch.from_numpy(params[name]["bias"]))
    return model


@pytest.mark.torch
def test_losses_match_pytorch_fast_neural_style(data_dir, tmp_path):
    torch = reference("torch")
    from tests.torch_style_references import losses

    rng = np.random.default_rng(2)
    style_file = photo(tmp_path / "style.png", (40, 36), seed=3)
    config = tiny_config(
        data_dir,
        family="style_transfer",
        style_image=style_file,
        style_size=32,
        # The recipe's layers and weights (the tiny config's stop at relu2_2, and scale down).
        style_layers=JOHNSON_STYLE_LAYERS,
        content_weight=1e5,
        style_weight=1e10,
    )
    recipe = style_transfer.get_config()
    assert (recipe.content_weight, recipe.style_weight) == (1e5, 1e10)
    assert dict(recipe.style_layers) == JOHNSON_STYLE_LAYERS
    assert config.content_layer == recipe.content_layer == "relu2_2"
    task = create_task(config, data.dataset_info("photos"))
    state = init_state(task)
    content = rng.uniform(-1, 1, (3, 16, 16, 3)).astype(np.float32)
    stylized = rng.uniform(-1.2, 1.2, (3, 16, 16, 3)).astype(np.float32)
    got = jax.jit(task.losses)(state, jnp.asarray(stylized), jnp.asarray(content))

    # Their scale: pixels in 0..255; the style image loaded and resized by PIL (LANCZOS) as
    # their utils.load_image with --style-size.
    with Image.open(style_file) as image:
        style = np.asarray(image.convert("RGB").resize((32, 32), Image.Resampling.LANCZOS))
    model = torch_vgg16(torch, os.path.join(data_dir, random_vgg_weights("vgg16")))

    def nchw(images):
        return torch.from_numpy(np.asarray(images, np.float64).transpose(0, 3, 1, 2))

    with torch.no_grad():
        expected = losses(
            model, nchw((content + 1) * 127.5), nchw((stylized + 1) * 127.5), nchw(style[None])
        )
    for name, ours, theirs in zip(("content", "style"), got, expected, strict=True):
        assert float(theirs) > 1e3, name  # the weights make both terms large numbers
        np.testing.assert_allclose(float(ours), float(theirs), rtol=2e-5, err_msg=name)


@pytest.fixture(scope="module")
def workdir(tiny_runs) -> str:
    """A two-step style-transfer run."""
    return tiny_runs["style_transfer"]


@pytest.fixture(scope="module")
def run(workdir) -> inference.LoadedRun:
    return inference.load_run(workdir)


def test_a_run_logs_its_losses_and_pictures_and_keeps_vgg_frozen(workdir, run, data_dir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        logged = [json.loads(line) for line in f]
    assert [m["step"] for m in logged] == [1, 2]
    for metrics in logged:
        np.testing.assert_allclose(
            metrics["loss"], metrics["content_loss"] + metrics["style_loss"], rtol=1e-5
        )
    assert os.path.isfile(os.path.join(workdir, "samples", "style_transfer_0000002.png"))
    weights = vgg.load_vgg(os.path.join(data_dir, random_vgg_weights("vgg16")), "vgg16")
    assert sorted(run.state.feature_net) == list(CONVS[:4])  # to relu2_2, the losses' deepest
    for name, layer in run.state.feature_net.items():
        np.testing.assert_array_equal(layer["kernel"], weights[name]["kernel"])


def test_uniform_images_are_left_out_of_the_loss(run):
    """A crop of one colour (the retina's black surround) would overflow the gradient through
    the instance norms: it is left out, and the others' loss and gradient stay finite."""
    task, state = run.task, run.state
    images = np.random.default_rng(5).uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    images[1] = [-1.0, -0.99, -0.98]  # one colour, not grey: uniform per channel
    images[3] = -1.0

    def loss(params, images):
        content, style = task.losses(state, task._transform(params, images), images)
        return content + style

    value_and_grad = jax.jit(jax.value_and_grad(loss))
    value, grads = value_and_grad(state.transformer.params, jnp.asarray(images))
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
    others, _ = value_and_grad(state.transformer.params, jnp.asarray(images[[0, 2, 0, 2]]))
    np.testing.assert_allclose(value, others, rtol=1e-5)


def test_evaluation_weighs_out_the_padding(run):
    task = run.task
    images = np.random.default_rng(4).uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    batch = {"image": jnp.asarray(images), "mask": jnp.asarray([1.0, 1.0, 1.0, 0.0])}
    evaluate = evaluator_of(run.config, task, "style")
    scores = evaluate(run.state, lambda: iter([batch]), jax.random.key(0))
    real = jnp.asarray(images[:3])
    stylized = task.transform(run.state, real)
    content, style = jax.jit(task.losses)(run.state, stylized, real)
    np.testing.assert_allclose(scores["test_content_loss"], content, rtol=1e-5)
    np.testing.assert_allclose(scores["test_style_loss"], style, rtol=1e-5)
    np.testing.assert_allclose(scores["test_loss"], content + style, rtol=1e-5)


def test_a_users_image_of_any_size_keeps_its_size(workdir, tmp_path):
    out = tmp_path / "out.png"
    assert transform_file(workdir, photo(tmp_path / "in.png"), str(out)) == (13, 21)
    with Image.open(out) as image:
        assert image.size == (21, 13) and image.mode == "RGB"
    grey = tmp_path / "grey.jpg"  # a greyscale file is converted to the model's channels
    assert transform_file(workdir, photo(tmp_path / "g.png", (6, 9), "L"), str(grey)) == (9, 6)


def test_the_library_refuses_other_arrays(run):
    with pytest.raises(UserError, match=r"takes \(height, width, 3\) images.*\(9, 6, 4\)"):
        transform_image(run, np.zeros((9, 6, 4), np.uint8))
    with pytest.raises(UserError, match="must be uint8 pixels"):
        transform_image(run, np.zeros((9, 6, 3), np.float32))


@pytest.mark.parametrize(
    "case,message",
    [
        ("not_an_image", "--input=.* is not a readable image"),
        ("missing_input", "--input=.* does not exist"),
        ("no_checkpoint", "no complete checkpoint of step 7"),
        ("no_run", "config.json does not exist"),
        ("no_folder", "its directory does not exist"),
        ("extension", "PIL cannot write '.xyz' files"),
    ],
)
def test_bad_input_overwrites_nothing(workdir, tmp_path, case, message):
    image = photo(tmp_path / "in.png")
    out = tmp_path / ("out.xyz" if case == "extension" else "out.png")
    out.write_text("kept")
    if case == "not_an_image":
        (tmp_path / "in.png").write_text("not a PNG")
    if case == "missing_input":
        image = str(tmp_path / "absent.png")
    if case == "no_folder":
        out = tmp_path / "absent" / "out.png"
    step = 7 if case == "no_checkpoint" else None
    with pytest.raises(UserError, match=message):
        transform_file(str(tmp_path) if case == "no_run" else workdir, image, str(out), step=step)
    assert not out.exists() if case == "no_folder" else out.read_text() == "kept"


def test_the_command_writes_the_image_and_reports_errors_in_one_line(workdir, tmp_path):
    def stylize(*arguments):
        return subprocess.run(
            [sys.executable, "-m", "cnngen_jax.commands.stylize", f"--workdir={workdir}",
             *arguments],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    out = tmp_path / "out.png"
    done = stylize(f"--input={photo(tmp_path / 'in.png', (10, 7))}", f"--output={out}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {out} (10x7)"
    assert Image.open(out).size == (10, 7)
    (tmp_path / "bad.png").write_text("not a PNG")
    failed = stylize(f"--input={tmp_path / 'bad.png'}", f"--output={out}")
    assert failed.returncode == 2
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --input={tmp_path / 'bad.png'} is not")


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"image_size": 18}, "image_size=18 must be a multiple of 4"),
        ({"style_weight": -1.0}, "style_weight=-1.0 must be >= 0"),
        ({"vgg": "vgg11"}, "VGG arch must be one of"),
        ({"style_layers": {"relu9_9": 1.0}}, r"must name layers of vgg16 .*\['relu9_9'\]"),
        ({"style_layers": {"relu4_3": 1.0}, "image_size": 4}, "image_size=4 .* at least 8"),
        ({"style_image": ""}, "config.style_image is empty"),
    ],
)
def test_bad_settings_name_the_setting(data_dir, settings, message):
    config = tiny_config(data_dir, family="style_transfer", **settings)
    with pytest.raises(UserError, match=message):
        create_task(config, data.dataset_info("photos"))


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"style_image": "skimage:absent.png"}, r"config.style_image=.*absent.png does not exist"),
        ({"style_size": 1}, "is 1x1 pixels; the style layers need at least 2x2"),
        ({"vgg_weights": "/absent/vgg16.npz"}, "config.vgg_weights: .* does not exist; .*"
         r"convert_vgg --arch=vgg16 --torch_weights=vgg16-397923af.pth --out=/absent/vgg16.npz`$"),
    ],
)  # fmt: skip
def test_missing_style_or_vgg_stops_before_the_workdir_is_written(
    data_dir, cache_dir, tmp_path, settings, message
):
    config = tiny_config(data_dir, cache_dir, family="style_transfer", **settings)
    with pytest.raises(UserError, match=message):
        train.train_and_evaluate(config, str(tmp_path))
    assert os.listdir(tmp_path) == []
