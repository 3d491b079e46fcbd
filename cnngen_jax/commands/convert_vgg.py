"""Convert torchvision's VGG16 / VGG19 weights into the pickle-free file `models.vgg` loads.

    python -m cnngen_jax.commands.convert_vgg --arch=vgg19 \\
        --torch_weights=vgg19-dcbb9e9d.pth --out=~/.cache/cnngen_jax/vgg19.npz

Only the convolutions of `features` are kept: the perceptual and style losses never use the
classifier. Needs PyTorch only for this one-off step; training never imports it. The library
behind it: `cnngen_jax.converters.vgg`.
"""

import argparse
import sys

from cnngen_jax.cli import EXIT_USER_ERROR
from cnngen_jax.converters import vgg as vgg_converter
from cnngen_jax.errors import UserError
from cnngen_jax.models import vgg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", required=True, choices=sorted(vgg.TORCHVISION_FILES))
    parser.add_argument("--torch_weights", required=True, help="torchvision .pth state dict")
    parser.add_argument("--out", required=True, help="output .npz for the Flax network")
    args = parser.parse_args(argv)
    try:
        digest = vgg_converter.convert(args.arch, args.torch_weights, args.out)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"wrote {args.out} ({args.arch} features, content sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
