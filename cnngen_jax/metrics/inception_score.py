"""Inception Score over splits, computed as torch-fidelity does (Salimans et al. 2016)."""

import numpy as np
from scipy.special import log_softmax, logsumexp


def inception_score(
    logits: np.ndarray, *, splits: int = 10, shuffle: bool = True, seed: int = 2020
) -> tuple[float, float]:
    """Mean and std over splits of exp(E_x KL(p(y|x) || p(y))), in float64.

    Feed the Inception 'logits_unbiased' (no fc bias), as the original code and torch-fidelity
    do. Samples are permuted with `np.random.RandomState(seed)` when `shuffle`, then cut into
    `splits` contiguous chunks. The marginal log p(y) is taken in the log domain, so classes
    that no sample predicts contribute 0 rather than the reference's NaN (0 * log 0).
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or len(logits) < splits:
        raise ValueError(f"expected (n >= splits={splits}, classes) logits, got {logits.shape}")
    n = len(logits)
    if shuffle:
        logits = logits[np.random.RandomState(seed).permutation(n)]
    log_p = log_softmax(logits, axis=1)
    scores = []
    for i in range(splits):
        chunk = log_p[i * n // splits : (i + 1) * n // splits]
        log_marginal = logsumexp(chunk, axis=0) - np.log(len(chunk))
        kl = (np.exp(chunk) * (chunk - log_marginal)).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
