"""The experiment configs, one file per experiment (`--config=configs/dcgan.py`). They import
as `cnngen_jax.configs` both from a source checkout and from an installed package, whose
setuptools package-dir mapping puts this folder at `cnngen_jax/configs/`."""
