"""Image restoration: super-resolution and inpainting as degradations of clean images.

`resize` (MATLAB-compatible bicubic), `masks` (boxes and free-form brush strokes) and
`degradations` (the registry of pure, seeded `(clean, key) -> Degraded` operators the restoration
task applies inside its jitted step).
"""
