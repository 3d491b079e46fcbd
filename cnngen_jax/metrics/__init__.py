"""Evaluation metrics: FID/KID/IS/precision-recall on Inception (or any) features, PSNR/SSIM."""

from cnngen_jax.metrics.features import FeatureSummary, extract_features
from cnngen_jax.metrics.frechet import frechet_distance
from cnngen_jax.metrics.image_quality import psnr, ssim
from cnngen_jax.metrics.inception import FIDInceptionV3
from cnngen_jax.metrics.inception_score import inception_score
from cnngen_jax.metrics.inception_weights import (
    InceptionWeights,
    InceptionWeightsMissing,
    load_inception_weights,
)
from cnngen_jax.metrics.kid import kernel_inception_distance
from cnngen_jax.metrics.moments import GaussianStats, MomentAccumulator
from cnngen_jax.metrics.precision_recall import precision_recall

__all__ = [
    "FIDInceptionV3",
    "FeatureSummary",
    "GaussianStats",
    "InceptionWeights",
    "InceptionWeightsMissing",
    "MomentAccumulator",
    "extract_features",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "load_inception_weights",
    "precision_recall",
    "psnr",
    "ssim",
]
