"""The command-line programs, each thin over a library module: flags, parsing, one library call,
printing. Nothing outside this package imports it (the library modules are the API).

    python -m cnngen_jax.commands.sample            grids, interpolations, class grids, --export
                                                    (cnngen_jax.sampling, cnngen_jax.export)
    python -m cnngen_jax.commands.edit              project, interpolate, latent arithmetic
                                                    (cnngen_jax.editing, cnngen_jax.inversion)
    python -m cnngen_jax.commands.restore           super-resolve or inpaint one's own image
    python -m cnngen_jax.commands.stylize           a style-transfer run applied to an image
                                                    (both cnngen_jax.transforming)
    python -m cnngen_jax.commands.convert_vgg       torchvision VGG16/19 weights -> .npz
    python -m cnngen_jax.commands.convert_inception the FID Inception weights -> .npz
                                                    (both cnngen_jax.converters)
    python -m cnngen_jax.commands.prepare           a dataset as ArrayRecord (cnngen_jax.data)
    python -m cnngen_jax.commands.evaluate          a checkpoint scored by its config.evals
                                                    (cnngen_jax.evaluators)

Training is `python -m cnngen_jax.main`.
"""
