"""The training batch order, computed without reading any data.

The input pipeline (`pipeline.train_iterator`) draws global batches from Grain's
`MapDataset.range(n).shuffle(seed).repeat().batch(B)`: epoch e is a random permutation of the n
examples keyed on (seed + e) mod 2^32, and global batch g is positions gB .. gB + B - 1 of the
endless concatenation of epochs. Grain's permutation is a cycle-walking Simon block cipher
(`grain/_src/python/experimental/index_shuffle`): the cipher's block is the smallest even number
of bits, at least 16, covering n - 1; four rounds, whose keys are the first four words of C++'s
`std::seed_seq{seed}`; values that land outside [0, n) are encrypted again until they do not.

This module computes the same permutation a whole epoch at a time, in NumPy for the host
pipeline (`GlobalBatches`) and as one XLA program for data held on the devices
(`epoch_orders`, used by `feed.DeviceFeed`): a run's batches do not depend on where its data
lives (both tested against Grain's own shuffle).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from cnngen_jax import parallel

_ROUNDS = 4  # what Grain's ShuffleMapDataset uses
_MIN_BLOCK_BITS = 16
_MASK32 = 0xFFFFFFFF


def _seed_seq_words(seed: int, count: int) -> list[int]:
    """The first `count` words `std::seed_seq{seed}.generate` writes (C++ [rand.util.seedseq])."""
    n, s = count, 1
    words = [0x8B8B8B8B] * n
    t = 11 if n >= 623 else 7 if n >= 68 else 5 if n >= 39 else 3 if n >= 7 else (n - 1) // 2
    p, q = (n - t) // 2, (n - t) // 2 + t
    m = max(s + 1, n)

    def mix(x: int) -> int:
        return (x ^ (x >> 27)) & _MASK32

    for k in range(m):
        r1 = (1664525 * mix(words[k % n] ^ words[(k + p) % n] ^ words[(k - 1) % n])) & _MASK32
        extra = s if k == 0 else (k % n + seed) if k <= s else k % n
        r2 = (r1 + extra) & _MASK32
        words[(k + p) % n] = (words[(k + p) % n] + r1) & _MASK32
        words[(k + q) % n] = (words[(k + q) % n] + r2) & _MASK32
        words[k % n] = r2
    for k in range(m, m + n):
        total = (words[k % n] + words[(k + p) % n] + words[(k - 1) % n]) & _MASK32
        r3 = (1566083941 * mix(total)) & _MASK32
        r4 = (r3 - k % n) & _MASK32
        words[(k + p) % n] ^= r3
        words[(k + q) % n] ^= r4
        words[k % n] = r4
    return words


def block_size(num_examples: int) -> int:
    """The values the cipher permutes for a split of `num_examples` (at least 2^16)."""
    return 2 ** _block_bits(max(num_examples - 1, 1))


def _block_bits(max_index: int) -> int:
    bits = math.ceil(math.log2(max_index))
    return max(bits + bits % 2, _MIN_BLOCK_BITS)


def _encrypt(values: np.ndarray, keys: list[int], word_bits: int) -> np.ndarray:
    """One pass of the Simon cipher over `values` (uint64, each 2 * word_bits wide)."""
    mask = np.uint64((1 << word_bits) - 1)

    def rotl(x, r):
        return ((x << np.uint64(r)) | (x >> np.uint64(word_bits - r))) & mask

    def f(x):
        return (rotl(x, 1) & rotl(x, 8)) ^ rotl(x, 2)

    left, right = (values >> np.uint64(word_bits)) & mask, values & mask
    for k1, k2 in zip(keys[::2], keys[1::2], strict=True):
        left = left ^ f(right) ^ (np.uint64(k1) & mask)
        right = right ^ f(left) ^ (np.uint64(k2) & mask)
    return (left << np.uint64(word_bits)) | right


def index_shuffle(indices: np.ndarray, max_index: int, seed: int) -> np.ndarray:
    """Where each of `indices` (in [0, max_index]) lands in Grain's permutation of
    [0, max_index] keyed on `seed`."""
    indices = np.asarray(indices, np.uint64)
    if max_index == 0:
        return np.zeros(indices.shape, np.int64)
    keys = _seed_seq_words(seed % 2**32, _ROUNDS)
    word_bits = _block_bits(max_index) // 2
    result = indices.copy()
    pending = np.arange(result.size)
    while pending.size:  # cycle walking: encrypt again what fell outside the range
        result[pending] = _encrypt(result[pending], keys, word_bits)
        pending = pending[result[pending] > max_index]
    return result.astype(np.int64)


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The example indices of epoch `epoch` in the order training reads them (int32).

    Walking index by index costs about 2^16 / n cipher passes each for small n; here the cipher
    is applied once to its whole block and the walks are followed by pointer doubling (landed
    values stay put): milliseconds at any size.
    """
    block = block_size(num_examples)
    if block < 4 * num_examples:  # short walks: index by index is cheaper
        return index_shuffle(np.arange(num_examples), num_examples - 1, seed + epoch).astype(
            np.int32
        )
    values = np.arange(block)
    cipher = index_shuffle(values, block - 1, seed + epoch)  # one pass: nothing walks
    jump = np.where(values < num_examples, values, cipher)
    ends = cipher[np.arange(num_examples) % block]  # % for n = 4^k + 1, whose block is short
    while (ends >= num_examples).any():
        ends, jump = jump[ends], jump[jump]
    return ends.astype(np.int32)


def epoch_orders(
    num_examples: int, seed: int, epochs: range, sharding: jax.sharding.NamedSharding
) -> jax.Array:
    """`epoch_permutation` of each of `epochs`, stacked (E, N) and laid out by `sharding`: the
    same algorithm as one XLA program on the devices (the host computes only round keys)."""
    keys = np.asarray([_seed_seq_words((seed + e) % 2**32, _ROUNDS) for e in epochs], np.uint32)
    keys = parallel.array_from_host(keys, sharding.mesh, sharding)
    bits = _block_bits(max(num_examples - 1, 1))
    return _compiled_orders(num_examples, bits, sharding)(keys)


@functools.cache
def _compiled_orders(num_examples: int, bits: int, sharding: jax.sharding.NamedSharding):
    return jax.jit(
        functools.partial(_epoch_orders, num_examples=num_examples, bits=bits),
        out_shardings=sharding,
    )


def _epoch_orders(keys: jax.Array, num_examples: int, bits: int) -> jax.Array:
    word_bits, block = bits // 2, 2**bits
    mask = jnp.uint32((1 << word_bits) - 1)

    def rotl(x, r):
        return ((x << r) | (x >> (word_bits - r))) & mask

    def f(x):
        return (rotl(x, 1) & rotl(x, 8)) ^ rotl(x, 2)

    def permutation(round_keys):
        values = jnp.arange(block, dtype=jnp.uint32)
        left, right = (values >> word_bits) & mask, values & mask
        for k1, k2 in zip(round_keys[::2], round_keys[1::2], strict=True):
            left = left ^ f(right) ^ (k1 & mask)
            right = right ^ f(left) ^ (k2 & mask)
        cipher = ((left << word_bits) | right).astype(jnp.int32)
        jump = jnp.where(values < num_examples, values.astype(jnp.int32), cipher)
        ends = cipher[jnp.arange(num_examples) % block]

        def double(walk):
            ends, jump = walk
            return jump[ends], jump[jump]

        walk = jax.lax.while_loop(lambda w: jnp.any(w[0] >= num_examples), double, (ends, jump))
        return walk[0]

    return jax.vmap(permutation)(keys)


class GlobalBatches:
    """The example indices of global batch g: Grain's
    `MapDataset.range(n).shuffle(seed).repeat().batch(B, drop_remainder=True)[g]`, cut from whole
    epochs' permutations (the last few kept) instead of shuffled index by index."""

    def __init__(self, num_examples: int, batch_size: int, seed: int):
        self.num_examples, self.batch_size = num_examples, batch_size
        epoch = functools.partial(epoch_permutation, num_examples, seed)
        self._epoch = functools.lru_cache(maxsize=4)(epoch)

    def __call__(self, position: int) -> np.ndarray:
        places = np.arange(position * self.batch_size, (position + 1) * self.batch_size)
        epochs, within = np.divmod(places, self.num_examples)
        parts = [self._epoch(int(e))[within[epochs == e]] for e in np.unique(epochs)]
        return np.concatenate(parts)
