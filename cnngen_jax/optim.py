"""Optimizers and learning-rate schedules of the training recipes (`config.optimizer`)."""

import jax
import ml_collections
import optax

from cnngen_jax.errors import UserError

SCHEDULES = ("constant", "linear", "cosine")


def learning_rate(
    base: float, schedule: str, num_train_steps: int, updates_per_step: int = 1
) -> optax.Schedule:
    """`base` throughout ('constant'), or decayed to 0 at `num_train_steps` linearly ('linear',
    SNGAN as Mimicry trains it) or by a half cosine ('cosine', BasicSR's MSRResNet). A network
    updated several times per train step (the critic with n_critic > 1) keeps one rate for all
    the updates of a step, as Mimicry does."""
    if schedule == "constant":
        return optax.constant_schedule(base)
    if schedule == "linear":
        decay = optax.linear_schedule(base, 0.0, max(num_train_steps, 1))
        return lambda count: decay(count // updates_per_step)
    if schedule == "cosine":
        return optax.cosine_decay_schedule(base, max(num_train_steps, 1))
    raise UserError(
        f"unknown learning-rate schedule {schedule!r} (config.optimizer.schedule); "
        f"choose one of: {', '.join(SCHEDULES)}"
    )


def adam(
    base_learning_rate: float,
    opt_config: ml_collections.ConfigDict,
    num_train_steps: int,
    updates_per_step: int = 1,
) -> optax.GradientTransformation:
    """Adam with `opt_config`'s betas and schedule."""
    rate = learning_rate(base_learning_rate, opt_config.schedule, num_train_steps, updates_per_step)
    return optax.adam(rate, b1=opt_config.b1, b2=opt_config.b2)


def freeze(
    optimizer: optax.GradientTransformation, frozen_modules: set[str]
) -> optax.GradientTransformation:
    """`optimizer` for the parameters of every top-level module but `frozen_modules`, which
    never change (FreezeD, Mo et al. 2020: the discriminator's lower blocks kept as trained)."""

    def labels(params):
        def label(name):
            return "frozen" if name in frozen_modules else "trained"

        return {name: jax.tree.map(lambda _, n=name: label(n), p) for name, p in params.items()}

    return optax.multi_transform({"trained": optimizer, "frozen": optax.set_to_zero()}, labels)
