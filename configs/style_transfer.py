"""Fast neural style transfer (Johnson et al. 2016): a TransformerNet learns one style from VGG16
content (relu2_2) and Gram-matrix style (relu1_2, relu2_2, relu3_3, relu4_3) losses, with the
layers and weights of pytorch/examples' `fast_neural_style` (content 1e5, style 1e10, Adam 1e-3).

The losses need VGG16's weights, converted once from torchvision's file (nothing is downloaded):

    python -m cnngen_jax.commands.convert_vgg --arch=vgg16 \\
        --torch_weights=vgg16-397923af.pth --out=~/.cache/cnngen_jax/vgg16.npz
    python -m cnngen_jax.main --config=configs/style_transfer.py --workdir=runs/style
    python -m cnngen_jax.commands.stylize --workdir=runs/style --input=photo.jpg --output=styled.png

The default trains in minutes on 2 CPU cores: random 64x64 crops of the embedded photographs,
batch 4, in the style of scikit-image's immunohistochemistry slide (`skimage:ihc.png`, resized to
256x256). Any image is a style: `--config.style_image=starry_night.jpg`.

The reference settings (pytorch/examples fast_neural_style/neural_style/neural_style.py's
defaults and the paper, sec. 4.1): content images 256x256 (resized, centre-cropped) from
COCO 2014 train (~83k images), batch 4, 2 epochs (40k iterations), Adam(1e-3), content weight
1e5, style weight 1e10, the style image at its own size (`--style-size` unset), the full network
(width 32, 5 residual blocks). COCO is not among the project's datasets; Places365's 256x256
scenes are the closest catalog content:

    --config.dataset=places365_small --config.image_size=256 --config.style_size=0 \\
    --config.num_train_steps=40000 --config.evals.style.every_steps=5000 \\
    --config.sample_every_steps=1000 --config.checkpoint_every_steps=5000
"""

import ml_collections

from cnngen_jax.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.base("style_transfer")
    config.dataset = "photos"  # random image_size crops; any catalog dataset works
    config.image_size = 64  # a multiple of 4, at least 8
    config.batch_size = 4
    config.num_train_steps = 600
    config.log_every_steps = 20
    config.sample_every_steps = 100
    config.checkpoint_every_steps = 200
    config.num_sample_images = 4  # unused: pictures show held-out images
    config.evals.style = common.style_losses(every_steps=300, num_images=100)

    # The style: an image path, or skimage:FILE for an image bundled with scikit-image; read
    # once when a run starts, resized to style_size x style_size (0: its own size).
    config.style_image = "skimage:ihc.png"
    config.style_size = 256
    # loss = content_weight * MSE(content_layer features) + style_weight * the sum over
    # style_layers (layer -> weight) of weight * MSE(Gram matrices), on the features of `vgg`
    # (converted weights at vgg_weights; '' for ~/.cache/cnngen_jax/{vgg}.npz).
    config.content_weight = 1e5
    config.style_weight = 1e10
    config.content_layer = "relu2_2"
    config.style_layers = ml_collections.ConfigDict(
        dict.fromkeys(("relu1_2", "relu2_2", "relu3_3", "relu4_3"), 1.0)
    )
    config.vgg = "vgg16"
    config.vgg_weights = ""

    config.model = ml_collections.ConfigDict()
    config.model.name = "transformer_net"  # Johnson et al.'s network, the only one
    config.model.width = 32  # channels of the first layer, then 2x and 4x (32: the reference)
    config.model.num_blocks = 5  # residual blocks

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.learning_rate = 1e-3
    config.optimizer.b1 = 0.9
    config.optimizer.b2 = 0.999
    config.optimizer.schedule = "constant"  # or 'linear', 'cosine': decay to 0 at the end
    return config
