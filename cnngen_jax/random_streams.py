"""The independent random streams of a run, each derived from `config.seed`, named here once.

The trainer owns randomness: every key a task or evaluator sees comes from `seed_key`, so tasks
hold no seed and resumed runs draw the same numbers. STATISTICS_STREAM is only ever taken of
seed 0: the fixed batch whose statistics normalise a GAN generator's BatchNorm in `decode`.
"""

import jax

TRAIN_STREAM, INIT_STREAM, SAMPLE_STREAM, EVAL_STREAM, STATISTICS_STREAM = range(5)

# The streams of a sampling seed (`--seed` of `python -m cnngen_jax.commands.sample`, not the
# run's): the samples' latents, the interpolations' end points, the class grid's latents, and an
# export's latents (one key per image index).
SAMPLES, INTERPOLATIONS, CLASS_GRID, EXPORT = range(4)


def seed_key(seed: int, stream: int, impl: str | None = None) -> jax.Array:
    """The key of one random stream; call it inside jitted code so nothing runs eagerly.

    Parameter initialisation may use a PRNG that compiles faster (`config.init_prng_impl`);
    training draws always use the default (threefry), whose numbers do not depend on how the
    computation is partitioned over devices.
    """
    return jax.random.fold_in(jax.random.key(seed, impl=impl), stream)
