"""cnngen_jax: CNN image generation (GANs, VAEs, restoration) in JAX/Flax.

Notebook use::

    from cnngen_jax import train
    from cnngen_jax.configs import dcgan
    config = dcgan.get_config()
    train.train_and_evaluate(config, workdir="/tmp/run")
"""

import importlib.util
import os
import sys

__version__ = "0.4.0"


def _configs_of_the_checkout() -> None:
    """Makes the top-level configs/ folder of a source checkout importable as
    `cnngen_jax.configs`; an installed package has its own copy there (pyproject.toml's
    package-dir mapping), so nothing is done."""
    package = os.path.dirname(os.path.abspath(__file__))
    folder = os.path.join(os.path.dirname(package), "configs")
    init = os.path.join(folder, "__init__.py")
    if os.path.isdir(os.path.join(package, "configs")) or not os.path.isfile(init):
        return
    name = f"{__name__}.configs"
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_configs_of_the_checkout()
