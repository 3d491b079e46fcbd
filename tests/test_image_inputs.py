"""Images users give the commands are read as they look (issue 27, "silently wrong pixels"):
16-bit PNGs scaled, not saturated; transparency refused in pictures and read as holes in masks;
EXIF orientation applied; 0/1 masks; decompression bombs one line; samples decoded in batches."""

import numpy as np
import pytest
from PIL import Image

from cnngen_jax import inference, sampling
from cnngen_jax.errors import UserError
from cnngen_jax.images import image_array, model_pixels, read_image, read_mask
from cnngen_jax.transforming import transform_file


def _png(tmp_path, name: str, image: Image.Image, **params) -> str:
    path = str(tmp_path / name)
    image.save(path, **params)
    return path


def test_16_bit_greyscale_is_scaled_not_saturated(tmp_path):
    wide = np.array([[0, 1000, 30000, 65535]], np.uint16)
    path = _png(tmp_path, "wide.png", Image.fromarray(wide))
    image = read_image(path, "--input")
    expected = (wide >> 8).astype(np.uint8)
    np.testing.assert_array_equal(image_array(image, 1)[..., 0], expected)
    np.testing.assert_array_equal(image_array(image, 3), np.repeat(expected[..., None], 3, -1))
    holes = read_mask(_png(tmp_path, "mask16.png", Image.fromarray(wide)))
    np.testing.assert_array_equal(holes, [[False, False, False, True]])


def test_transparent_pictures_are_refused_and_opaque_alpha_dropped(tmp_path):
    rgba = np.full((2, 3, 4), 200, np.uint8)
    rgba[..., 3] = 255
    opaque = _png(tmp_path, "opaque.png", Image.fromarray(rgba))
    np.testing.assert_array_equal(image_array(read_image(opaque, "--input"), 3), rgba[..., :3])
    rgba[0, 0, 3] = 0
    see_through = _png(tmp_path, "see_through.png", Image.fromarray(rgba))
    with pytest.raises(UserError, match=r"--input=.*see_through.png has transparent pixels"):
        image_array(read_image(see_through, "--input"), 3, f"--input={see_through}")
    grey_alpha = Image.fromarray(rgba[..., [0, 3]], "LA")
    path = _png(tmp_path, "la.png", grey_alpha)
    with pytest.raises(UserError, match=r"la.png has 2 channels \(greyscale with alpha\)"):
        model_pixels(read_image(path, "--a"), path, (2, 3, 1), "--a")  # edit's reading
    palette = Image.fromarray(rgba[..., 3]).convert("P")  # grey palette: index 0 is black
    path = _png(tmp_path, "palette.png", palette, transparency=0)
    with pytest.raises(UserError, match="transparent pixels"):
        image_array(read_image(path, "--input"), 3)


def test_transparent_pixels_of_a_mask_are_its_holes(tmp_path):
    rgba = np.zeros((3, 4, 4), np.uint8)  # black everywhere: by colour, no holes
    rgba[..., 3] = 255
    rgba[1, 1:3, 3] = 0
    holes = read_mask(_png(tmp_path, "mask.png", Image.fromarray(rgba)))
    expected = np.zeros((3, 4), bool)
    expected[1, 1:3] = True
    np.testing.assert_array_equal(holes, expected)


def test_a_mask_of_zeros_and_ones_has_holes_at_the_ones(tmp_path):
    values = np.array([[0, 1, 1], [0, 0, 1]], np.uint8)
    holes = read_mask(_png(tmp_path, "binary.png", Image.fromarray(values)))
    np.testing.assert_array_equal(holes, values == 1)
    white = read_mask(_png(tmp_path, "white.png", Image.fromarray(values * 255)))
    np.testing.assert_array_equal(white, values == 1)
    bits = read_mask(_png(tmp_path, "bits.png", Image.fromarray(values.astype(bool))))
    np.testing.assert_array_equal(bits, values == 1)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.arange(8, dtype=np.uint8).reshape(2, 4) * 30
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = _png(tmp_path, "photo.png", image, exif=exif)
    upright = read_image(path, "--input")
    np.testing.assert_array_equal(image_array(upright, 1)[..., 0], np.rot90(pixels, k=-1))


@pytest.mark.parametrize("side", [11, 20])  # PIL warns up to twice its limit, then raises
def test_decompression_bombs_are_one_line(tmp_path, monkeypatch, side):
    path = _png(tmp_path, "bomb.png", Image.new("L", (side, side)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(UserError, match=r"--input=.*bomb.png claims more than 100 pixels"):
        read_image(path, "--input")


def test_restore_reads_a_transparent_mask_as_holes_and_refuses_a_transparent_input(
    tiny_runs, tmp_path
):
    image = np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    source = _png(tmp_path, "photo.png", Image.fromarray(image))
    rgba = np.full((20, 28, 4), 255, np.uint8)
    rgba[5:12, 8:20] = 0  # transparent black holes in an opaque white mask
    mask = _png(tmp_path, "holes.png", Image.fromarray(rgba))
    out = str(tmp_path / "filled.png")
    transform_file(tiny_runs["inpainting"], source, out, mask)
    filled = np.asarray(Image.open(out))
    holes = rgba[..., 3] == 0
    np.testing.assert_array_equal(filled[~holes], image[~holes])
    assert np.abs(filled[holes].astype(int) - image[holes]).max() > 0
    with pytest.raises(UserError, match="--input=.*holes.png has transparent pixels"):
        transform_file(tiny_runs["inpainting"], mask, out, mask)


def test_samples_are_decoded_in_batches_with_the_same_result(tiny_runs):
    run = inference.load_run(tiny_runs["vae"])
    calls = []
    decode = run.task.decode

    def counted(state, latents, labels=None):
        calls.append(len(latents))
        return decode(state, latents, labels)

    whole = sampling.draw(run, 5, seed=1, interpolation_steps=0)["samples"]
    object.__setattr__(run.task, "decode", counted)
    try:
        batched = sampling.draw(run, 5, seed=1, interpolation_steps=0, batch_size=2)["samples"]
    finally:
        object.__delattr__(run.task, "decode")
    assert calls and max(calls) == 2
    assert batched.shape == whole.shape == (5, *run.task.image_shape)
    np.testing.assert_allclose(batched, whole, atol=1e-5)
