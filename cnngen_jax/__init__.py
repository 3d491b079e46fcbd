"""cnngen_jax: CNN image generation (GANs, VAEs) in JAX/Flax.

Notebook use::

    from cnngen_jax import train
    from configs import dcgan
    config = dcgan.get_config()
    train.train_and_evaluate(config, workdir="/tmp/run")
"""

__version__ = "0.2.0"
