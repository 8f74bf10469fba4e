"""The lexical engine's hashing scheme, in plain Python: the specification of `_native.c`.

Everything the engine derives from a normalised text is a function of its Unicode code points:

- exact hash: two 64-bit FNV-style passes over the code points (different multipliers), each
  finished with the MurmurHash3 64-bit finaliser `fmix64` and the length: 128 bits in all.
- units: word mode takes the regex `\\w+` tokens (Python's definition: alphanumeric or `_`), each
  hashed with FNV-1a 64 over its code points and finished with `fmix64`; char mode takes every
  non-space code point c as `fmix64(c + M_GRAM)`.
- shingles: the n-gram of units u_i..u_{i+n-1} is `g = u_i; g = fmix64(g * M_GRAM + u_j)` for the
  next units; a text with n units or fewer is one shingle of all its units. A text's shingles are
  its distinct n-gram hashes, sorted.
- MinHash: slot p is `min over shingles x of ((a_p * x + b_p) mod 2^64) >> 32` (multiply-add-shift,
  a 2-universal family on the already mixed 64-bit shingle hashes); `a_p` (odd) and `b_p` come
  from numpy's PCG64 seeded with the config's seed, so they are the same on every platform.
- band keys: band k of r rows is `h = fmix64(SEED_BAND + k); h = fmix64(h * M_GRAM + sig[k*r + j])`.

This module is slow on purpose (one Python step per code point): tests check that the C kernels
give identical outputs, and the engine falls back to it where the extension could not be built.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MASK = (1 << 64) - 1
M_TOKEN = 0x100000001B3
SEED_TOKEN = 0xCBF29CE484222325
M_GRAM = 0x9E3779B97F4A7C15
SEED_EXACT1 = 0x243F6A8885A308D3
SEED_EXACT2 = 0x13198A2E03707344
M_EXACT2 = 0xA0761D6478BD642F
SEED_BAND = 0x452821E638D01377
EMPTY_SLOT = 0xFFFFFFFF
_WORD = re.compile(r"\w+")


def fmix64(k: int) -> int:
    """MurmurHash3's 64-bit finaliser (a bijection that mixes every input bit)."""
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK
    k ^= k >> 33
    return k


def exact_hash(text: str) -> tuple[int, int]:
    e1, e2 = SEED_EXACT1, SEED_EXACT2
    for ch in text:
        c = ord(ch)
        e1 = ((e1 ^ c) * M_TOKEN) & MASK
        e2 = ((e2 ^ c) * M_EXACT2) & MASK
    n = len(text)
    return fmix64(e1 ^ n), fmix64((e2 + n) & MASK)


def units(text: str, char_mode: bool) -> list[int]:
    if char_mode:
        return [fmix64((ord(ch) + M_GRAM) & MASK) for ch in text if not ch.isspace()]
    out = []
    for word in _WORD.findall(text):
        h = SEED_TOKEN
        for ch in word:
            h = ((h ^ ord(ch)) * M_TOKEN) & MASK
        out.append(fmix64(h))
    return out


def _gram(hs: Sequence[int]) -> int:
    g = hs[0]
    for h in hs[1:]:
        g = fmix64((g * M_GRAM + h) & MASK)
    return g


def shingles(text: str, char_mode: bool, ngram: int) -> list[int]:
    """The text's sorted distinct shingle hashes."""
    u = units(text, char_mode)
    if not u:
        return []
    if len(u) <= ngram:
        return [_gram(u)]
    return sorted({_gram(u[i : i + ngram]) for i in range(len(u) - ngram + 1)})


def signature(shingle_hashes: Sequence[int], a: Sequence[int], b: Sequence[int]) -> list[int]:
    sig = [EMPTY_SLOT] * len(a)
    for x in shingle_hashes:
        for p, (ap, bp) in enumerate(zip(a, b, strict=True)):
            v = ((ap * x + bp) & MASK) >> 32
            if v < sig[p]:
                sig[p] = v
    return sig


def band_keys(sig: Sequence[int], bands: int, rows: int) -> list[int]:
    keys = []
    for k in range(bands):
        h = fmix64((SEED_BAND + k) & MASK)
        for j in range(rows):
            h = fmix64((h * M_GRAM + sig[k * rows + j]) & MASK)
        keys.append(h)
    return keys


def intersection(x: Sequence[int], y: Sequence[int]) -> int:
    return len(set(x) & set(y))
