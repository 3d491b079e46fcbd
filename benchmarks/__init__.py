"""Measurement tools, run from the repository root and never installed with the package:

    python -m benchmarks.train_speed ...   training speed against the PyTorch references
    python -m benchmarks.seeds ...         config.num_seeds = K against K separate runs

They import what they measure from `cnngen_jax`; the package never imports them (nor PyTorch,
whose references live in tests/). BENCHMARKS.md has the figures and their commands.
"""
