"""Prepares a dataset as ArrayRecord in a TFDS data directory (catalog datasets need network).

    python -m cnngen_jax.commands.prepare --dataset=mnist --data_dir=~/tensorflow_datasets

The library behind it: `cnngen_jax.data.prepare`.
"""

from absl import app, flags

from cnngen_jax import cli, data

_DATASET = flags.DEFINE_string("dataset", "digits", "Dataset name, as in config.dataset.")
_DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data directory ('' for TFDS's default).")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    with cli.reported_errors():
        data_dir = data.prepare(_DATASET.value, _DATA_DIR.value)
    print(f"{_DATASET.value} is ready in {data_dir}")


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
