"""The restoration task end to end: the embedded photographs and their random crops, the
evaluation protocol against scikit-image, and `cnngen_jax.transforming` (`commands.restore`) on
a user's image, bad input included. (Networks: test_restoration_models.py; resize:
test_resize.py; masks: test_masks.py; biharmonic fill: test_fill.py; two steps, 1 vs 8 devices
and exact resume: the contract tests.)"""

import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from cnngen_jax import checkpoint, data, inference, train
from cnngen_jax.data import photos, pipeline
from cnngen_jax.errors import UserError
from cnngen_jax.metrics import image_quality
from cnngen_jax.models import ModelSpec, get_model, vgg
from cnngen_jax.restoration.fill import pull_push
from cnngen_jax.restoration.resize import imresize
from cnngen_jax.restoration.tiling import tiled
from cnngen_jax.tasks import create_task
from cnngen_jax.transforming import transform_file, transform_image
from tests.conftest import ROOT, VGG_WEIGHTS, evaluator_of, init_state, tiny_config


def test_photographs_are_split_by_scene():
    train_names = {name for name, _ in photos.read_split("train")}
    test_names = {name for name, _ in photos.read_split("test")}
    assert not train_names & test_names
    assert {"motorcycle_left", "motorcycle_right"} <= train_names  # one scene, one side
    for _, image in photos.read_split("test"):
        assert image.dtype == np.uint8 and image.shape[-1] == 3


def test_a_crop_larger_than_a_training_photograph_stops_before_the_run_writes(data_dir, tmp_path):
    shortest = min(min(image.shape[:2]) for _, image in photos.read_split("train"))
    assert data.get_spec("photos").shortest_train_side == shortest
    config = tiny_config(data_dir, family="srresnet", image_size=shortest + 1)
    with pytest.raises(UserError, match=f"image_size={shortest + 1} is larger than"):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def crops(data_dir: str, image_size: int, state=None, count: int = 2) -> list[np.ndarray]:
    source = data.open_source("photos", "train", data_dir)
    iterator = pipeline.train_iterator(
        source, data.get_spec("photos"), image_size=image_size, global_batch_size=4,
        rows=slice(0, 4), seed=3, num_threads=1, prefetch=1,
    )  # fmt: skip
    if state is not None:
        iterator.set_state(state)
    batches = [next(iterator)["image"] for _ in range(count)]
    return batches, iterator.get_state()


def test_random_crops_are_seeded_and_resume_exactly(data_dir):
    (first, second), _ = crops(data_dir, 48)
    assert first.shape == (4, 48, 48, 3) and first.min() >= -1 and first.max() <= 1
    assert not np.array_equal(first, second)
    (again, _), _ = crops(data_dir, 48)
    np.testing.assert_array_equal(first, again)
    _, after_one = crops(data_dir, 48, count=1)
    (resumed,), _ = crops(data_dir, 48, state=after_one, count=1)
    np.testing.assert_array_equal(resumed, second)


def test_a_crop_larger_than_a_photograph_is_refused(data_dir):
    with pytest.raises(UserError, match="image_size=900 is larger than"):
        crops(data_dir, 900, count=1)


def test_super_resolution_protocol_matches_scikit_image(data_dir):
    """Bicubic x4 on the held-out photographs, scored as BasicSR does (8-bit, Y of BT.601,
    4 pixels cropped), by the task and by scikit-image on the same LR images."""
    config = tiny_config(data_dir, family="srresnet")
    task = create_task(config, data.dataset_info("photos"))
    source = data.open_source("photos", "test", data_dir)
    spec = data.get_spec("photos")
    batches = list(pipeline.eval_batches(source, spec, image_size=16, global_batch_size=8,
                                         rows=slice(0, 8)))  # fmt: skip
    evaluate = evaluator_of(config, task, "restoration", data_dir)
    metrics = evaluate(init_state(task), lambda: iter(batches), jax.random.key(0))
    psnr, ssim = [], []
    for batch in batches:
        hr = batch["image"][0]
        hr = hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]
        lr = np.round((np.asarray(imresize(hr[None], 0.25)) + 1) * 127.5) / 127.5 - 1
        up = np.asarray(imresize(jnp.asarray(lr, jnp.float32), 4.0))[0]

        def luma(x):
            pixels = np.round((np.clip(x, -1, 1) + 1) * 127.5) / 255.0
            return rgb2ycbcr(pixels)[4:-4, 4:-4, 0]

        psnr.append(peak_signal_noise_ratio(luma(hr), luma(up), data_range=255))
        ssim.append(
            structural_similarity(
                luma(hr),
                luma(up),
                data_range=255,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )  # fmt: skip
        )
    np.testing.assert_allclose(metrics["bicubic_psnr_y"], np.mean(psnr), atol=2e-3)
    np.testing.assert_allclose(metrics["bicubic_ssim_y"], np.mean(ssim), atol=2e-4)
    assert {"test_psnr_y", "test_ssim_y", "test_psnr_rgb", "bicubic_psnr_rgb"} <= set(metrics)


def photo(path, size=(20, 14), mode="RGB") -> str:
    pixels = np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return str(path)


def test_super_resolution_of_a_users_image(tiny_runs, tmp_path):
    out = tmp_path / "out.png"
    assert transform_file(tiny_runs["srresnet"], photo(tmp_path / "in.png"), str(out)) == (56, 80)
    with Image.open(out) as image:
        assert image.size == (80, 56) and image.mode == "RGB"
    grey = tmp_path / "grey_out.png"  # a greyscale file is converted to the model's channels
    transform_file(tiny_runs["srresnet"], photo(tmp_path / "grey.png", mode="L"), str(grey))
    assert Image.open(grey).size == (80, 56)


def test_tiles_give_the_whole_image_result():
    """A network whose receptive field fits the overlap gives, tile by tile, exactly its
    whole-image output: borders included (its zero padding meets the true image borders)."""
    model = get_model("msrresnet", "restoration")(
        ml_collections.ConfigDict({"width": 8, "num_blocks": 1}),
        ModelSpec(image_size=64, channels=3, scale=4),  # image_size: not read by restorers
    )
    image = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, (1, 21, 30, 3)), jnp.float32)
    variables = model.init(jax.random.key(0), image)
    variables = jax.tree.map(lambda w: 10 * w, variables)  # far from the bilinear skip alone
    restore = jax.jit(lambda x: model.apply(variables, x))
    whole = np.asarray(restore(image))
    pieces = tiled(restore, image, tile=8, scale=4, overlap=8)
    assert pieces.shape == whole.shape == (1, 84, 120, 3) and np.abs(whole).max() > 3
    np.testing.assert_allclose(pieces, whole, rtol=1e-5, atol=1e-4)
    too_little_context = tiled(restore, image, tile=8, scale=4, overlap=1)
    assert np.abs(too_little_context - whole).max() > 1e-2  # the test can tell


def test_inpainting_fills_only_the_holes(tiny_runs, tmp_path):
    run = inference.load_run(tiny_runs["inpainting"])
    image = np.random.default_rng(3).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    mask = np.zeros((20, 28), bool)
    mask[5:12, 8:20] = True
    filled = transform_image(run, image, mask)
    np.testing.assert_array_equal(filled[~mask], image[~mask])
    assert filled[mask].std() > 5  # filled from the surroundings, not left a blank grey


@pytest.mark.parametrize(
    "run,arguments,message",
    [
        ("srresnet", {"scale": 2}, "--scale=2, but the model .* x4"),
        ("srresnet", {"size": (1, 1)}, "needs at least 2x2"),
        ("srresnet", {"mask": (20, 14)}, "--mask is for inpainting models"),
        ("inpainting", {"mask": (10, 14)}, "--mask is 14x10 pixels and --input 14x20"),
        ("inpainting", {}, "needs --mask"),
        (
            "inpainting",
            {"mask": (20, 14), "tile": 8},
            "--tile is for super-resolution; an inpainting model sees whole images",
        ),
        ("srresnet", {"tile": -1}, "--tile=-1 must be 0"),
        ("srresnet", {"not_an_image": True}, "is not a readable image"),
        ("srresnet", {"step": 7}, "no complete checkpoint of step 7 .*steps: 2"),
        ("empty", {}, "config.json does not exist"),
    ],
)
def test_bad_input_names_the_setting_and_writes_nothing(
    tiny_runs, tmp_path, run, arguments, message
):
    image = photo(tmp_path / "in.png", arguments.get("size", (20, 14)))
    if arguments.get("not_an_image"):
        (tmp_path / "in.png").write_text("not a PNG")
    mask = None
    if "mask" in arguments:
        mask = photo(tmp_path / "mask.png", arguments["mask"], mode="L")
    workdir = tiny_runs.get(run, str(tmp_path))
    out = tmp_path / "out.png"
    with pytest.raises(UserError, match=message):
        step, scale, tile = (arguments.get(key) for key in ("step", "scale", "tile"))
        transform_file(workdir, image, str(out), mask, step, scale, tile or 0)
    assert not out.exists()


def test_the_command_exits_2_with_one_error_line(tiny_runs, tmp_path):
    out = tmp_path / "out.png"
    result = subprocess.run(
        [sys.executable, "-m", "cnngen_jax.commands.restore", f"--workdir={tiny_runs['srresnet']}",
         f"--input={photo(tmp_path / 'in.png')}", f"--output={out}", "--scale=3"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: --scale=3, but the model in {tiny_runs['srresnet']} was trained to upscale x4"
    ]
    assert not out.exists()


def test_pull_push_keeps_known_pixels_and_fills_smoothly():
    rng = np.random.default_rng(4)
    ramp = np.linspace(-1, 1, 23, dtype=np.float32)
    images = np.broadcast_to(ramp[None, None, :, None], (2, 17, 23, 3)).copy()
    images[1] = rng.uniform(-1, 1, (17, 23, 3))
    holes = np.zeros((2, 17, 23, 1), np.float32)
    holes[:, 5:11, 6:14] = 1
    filled = np.asarray(pull_push(jnp.asarray(images), jnp.asarray(holes)))
    known = holes[..., 0] == 0
    np.testing.assert_array_equal(filled[known], images[known])
    # Inside the hole of a ramp the fill stays within the values around it, close to the ramp.
    inside = filled[0, 5:11, 6:14, 0]
    assert inside.min() >= ramp[5] and inside.max() <= ramp[14]
    assert np.abs(inside - images[0, 5:11, 6:14, 0]).max() < 0.2
    everything = np.ones_like(holes)  # no known pixel: nothing to interpolate from
    assert np.all(np.asarray(pull_push(jnp.asarray(images), jnp.asarray(everything))) == 0)


@pytest.mark.parametrize("family", ["srresnet", "inpainting"])
def test_an_exact_restoration_scores_the_capped_psnr(data_dir, family):
    """A uniform region restored exactly has an infinite PSNR (BasicSR, scikit-image); one such
    image would make the mean infinite, so every image's is capped."""
    config = tiny_config(data_dir, family=family)
    task = create_task(config, data.dataset_info("photos"))
    clean = jnp.zeros((2, 32, 32, 3)).at[1].set(0.5)
    degraded = task.degrade(clean, jax.random.key(0))
    scores = evaluator_of(config, task, "restoration", data_dir)._quality(
        clean.at[1].add(2 / 255), degraded
    )
    psnr = scores["psnr" if task.inpainting else "psnr_y"]
    assert psnr[0] == image_quality.MAX_PSNR and np.isfinite(psnr[1]) and psnr[1] < 60


@pytest.mark.parametrize(
    "family,settings,message",
    [
        ("srresnet", {"scale": 5}, r"scale=5 is not supported \(config.scale\)"),
        ("srresnet", {"image_size": 18}, "image_size=18 .* not a multiple of scale=4"),
        ("srresnet", {"degradation": "blur"}, "unknown degradation 'blur'"),
        ("inpainting", {"masks": "circles"}, "unknown mask kind 'circles'"),
        ("srresnet", {"pixel_loss": "huber"}, "unknown pixel_loss 'huber'"),
        ("srresnet", {"hole_weight": -1.0}, "hole_weight=-1.0 must be >= 0"),
        ("srgan", {"perceptual_layers": {"conv6_1": 1.0}}, r"names \['conv6_1'\], not layers"),
        ("srgan", {"vgg_weights": "/nonexistent/vgg19.npz"}, "does not exist.*convert_vgg"),
        ("srgan", {"image_size": 48}, "divisible by 32"),
    ],
)
def test_bad_settings_name_the_setting(data_dir, family, settings, message):
    config = tiny_config(data_dir, family=family, **settings)
    with pytest.raises(UserError, match=message):
        init_state(create_task(config, data.dataset_info("photos")))  # reads the VGG weights


def test_a_perceptual_run_reloads_its_vgg_from_the_checkpoint_alone(data_dir, tmp_path):
    weights = tmp_path / "vgg19.npz"
    shutil.copy(os.path.join(data_dir, VGG_WEIGHTS), weights)
    config = tiny_config(data_dir, family="srgan", vgg_weights=str(weights))
    task = create_task(config, data.dataset_info(config.dataset))
    state = init_state(task)  # the VGG read from the file
    conv = np.asarray(state.feature_net["conv1_1"]["kernel"])
    np.testing.assert_array_equal(conv, vgg.load_vgg(str(weights), "vgg19")["conv1_1"]["kernel"])
    workdir = tmp_path / "run"
    (workdir / "checkpoints").mkdir(parents=True)
    (workdir / "config.json").write_text(config.to_json())
    saver = checkpoint.CheckpointWriter(str(workdir / "checkpoints"), 1)
    saver.save(1, state, {}, config)
    saver.close()
    weights.unlink()
    loaded = inference.load_run(str(workdir))
    np.testing.assert_array_equal(loaded.state.feature_net["conv1_1"]["kernel"], conv)
