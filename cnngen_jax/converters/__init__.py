"""One-off conversions of PyTorch weights into the pickle-free `.npz` files the Flax networks
load: torchvision's VGG16/19 (`vgg`, for the perceptual and style losses and inversion) and the
FID Inception network (`inception`). `torch_weights` is the one place PyTorch is imported, and
only while a conversion runs; training and evaluation never import it. The commands are
`python -m cnngen_jax.commands.convert_vgg` and `python -m cnngen_jax.commands.convert_inception`.
"""
