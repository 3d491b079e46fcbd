"""The held-out likelihood bounds of a model with one (a VAE): the negative ELBO and the
importance-weighted bound (Burda et al. 2016) in nats per image, and the ELBO in bits per
dimension, over every image of the split."""

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cnngen_jax import capabilities, parallel
from cnngen_jax.errors import UserError
from cnngen_jax.evaluators import Context, register_evaluator
from cnngen_jax.evaluators.held_out import HeldOut


@register_evaluator("elbo")
class ELBO:
    """`config.evals.NAME = common.elbo(every_steps, iw_samples)`."""

    capability = capabilities.Likelihood

    def __init__(self, settings: ml_collections.ConfigDict, context: Context):
        if settings.iw_samples < 1:
            raise UserError(
                f"iw_samples={settings.iw_samples} ({context.setting('iw_samples')}) must be at "
                "least 1 (1 gives the ELBO)"
            )
        self.model = context.task
        self.iw_samples = settings.iw_samples
        self.num_dims = math.prod(self.model.image_shape)
        self._sums = jax.jit(self._batch_sums)

    def _batch_sums(self, state: Any, batch: dict, key: jax.Array) -> dict[str, jax.Array]:
        bounds = self.model.likelihood_bounds(state, batch, key, self.iw_samples)
        mask = batch["mask"]
        return {
            "nelbo": jnp.sum(mask * bounds["nelbo"]),
            "nll_iw": jnp.sum(mask * bounds["nll_iw"]),
            "count": jnp.sum(mask),
        }

    def __call__(self, state: Any, held_out: HeldOut, key: jax.Array) -> dict[str, np.ndarray]:
        """The noise of batch i is fixed by `key` and i, so evaluation is deterministic."""
        totals = {"nelbo": 0.0, "nll_iw": 0.0, "count": 0.0}
        for i, batch in enumerate(held_out()):
            sums = self._sums(state, batch, jax.random.fold_in(key, i))
            for name, value in parallel.to_host(sums).items():
                totals[name] += float(value)
        count = totals["count"]
        nelbo = totals["nelbo"] / count
        return {
            "test_nelbo": np.asarray(nelbo),
            "test_nll_iw": np.asarray(totals["nll_iw"] / count),
            "test_bpd": np.asarray(nelbo / (self.num_dims * math.log(2))),
        }

    def protocol(self) -> dict[str, Any]:
        return {
            "iw_samples": self.iw_samples,
            "units": "nats per image; test_bpd: the ELBO in bits per dimension",
        }
