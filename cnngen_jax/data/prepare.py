"""Prepares a dataset as ArrayRecord in a TFDS data directory (catalog datasets need network).

python -m cnngen_jax.data.prepare --dataset=mnist --data_dir=~/tensorflow_datasets
"""

from absl import app, flags

from cnngen_jax import data

_DATASET = flags.DEFINE_string("dataset", "digits", "Dataset name, as in config.dataset.")
_DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data directory ('' for TFDS's default).")


def main(argv: list[str]) -> None:
    del argv
    import tensorflow_datasets as tfds

    spec = data.get_spec(_DATASET.value)
    data_dir = data.resolve_data_dir(_DATA_DIR.value)
    if spec.embedded:
        data.ensure_prepared(_DATASET.value, data_dir)
    else:
        builder = tfds.builder(spec.tfds_name, data_dir=data_dir, file_format="array_record")
        builder.download_and_prepare()
    print(f"{_DATASET.value} is ready in {data_dir}")


if __name__ == "__main__":
    app.run(main)
