"""Convert the PyTorch FID Inception state dict into the pickle-free file the Flax network loads.

    python -m cnngen_jax.commands.convert_inception \\
        --torch_weights=pt_inception-2015-12-05-6726825d.pth --out=fid_inception.npz

Needs PyTorch only for this one-off step; evaluation itself never imports it. The library
behind it: `cnngen_jax.converters.inception`.
"""

import argparse
import sys

from cnngen_jax.cli import EXIT_USER_ERROR
from cnngen_jax.converters import inception
from cnngen_jax.errors import UserError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torch_weights", required=True, help="PyTorch .pth state dict")
    parser.add_argument("--out", required=True, help="output .npz for the Flax network")
    args = parser.parse_args(argv)
    try:
        digest = inception.convert(args.torch_weights, args.out)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"wrote {args.out} (weights sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
