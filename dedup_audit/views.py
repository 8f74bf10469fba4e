"""Text views of a record and the normalisation/shingling that detectors share.

A record is compared as three texts: `prompt` (system + user turns, history included), `response`
(assistant turns; the chosen answer for pairwise data) and `full` (the whole conversation with
role markers). SFT duplication means different things per view: the same prompt with different
responses is a conflict, the same response to different prompts is a canned answer.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from dedup_audit.config import MinHashConfig, NormalizeConfig
from dedup_audit.records import Record, Sample

_PROMPT_ROLES = frozenset({"user", "tool", "function", "observation"})
_WS = re.compile(r"\s+")
_WORD = re.compile(r"\w+", re.UNICODE)
# CJK ideographs, kana, hangul: scripts written without spaces, where word shingles degenerate.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_ASCII_PUNCT = set(string.punctuation)


def view_text(sample: Sample, view: str) -> str:
    """The raw (un-normalised) text of one view. Turns are joined with role markers in `full` so
    that moving text between turns is not mistaken for an identical conversation."""
    if view == "prompt":
        parts = [sample.system] if sample.system else []
        parts += [t.text for t in sample.turns if t.role in _PROMPT_ROLES]
        return "\n".join(parts)
    if view == "first_turn":
        first = next((t.text for t in sample.turns if t.role == "user"), "")
        return f"{sample.system}\n{first}" if sample.system else first
    if view == "response":
        return "\n".join(t.text for t in sample.turns if t.role == "assistant")
    if view == "full":
        parts = [f"<system>\n{sample.system}"] if sample.system else []
        if sample.tools:
            parts.append(f"<tools>\n{sample.tools}")
        parts += [f"<{t.role}>\n{t.text}" for t in sample.turns]
        return "\n".join(parts)
    raise ValueError(f"unknown view {view!r}")


def normalize(text: str, cfg: NormalizeConfig) -> str:
    """Normalise for comparison only; the written output always keeps the original text."""
    text = _nfkc_lower(text, cfg)
    if cfg.punctuation:
        text = "".join(
            ch
            for ch in text
            if ch not in _ASCII_PUNCT and not unicodedata.category(ch).startswith("P")
        )
    if cfg.whitespace:
        text = " ".join(text.split())  # the same runs as `\s+` (Py_UNICODE_ISSPACE), 5x faster
    return text


@lru_cache(maxsize=1)
def _punctuation_table() -> bytes:
    """One byte per BMP code point: 1 where `normalize` drops the character (ASCII punctuation
    or Unicode category P*), from this interpreter's own unicodedata, so both paths agree."""
    return bytes(
        1 if chr(c) in _ASCII_PUNCT or unicodedata.category(chr(c)).startswith("P") else 0
        for c in range(0x10000)
    )


def normalize_many(texts: Sequence[str], cfg: NormalizeConfig) -> list[str]:
    """`normalize` over a batch, equal to it text by text, with the per-character work in the
    engine's C kernels: NFKC and lowercasing stay with Python's own str methods (only needed for
    non-ASCII texts; for ASCII both are trivial), then punctuation removal and whitespace
    folding run natively. Texts the kernel declines (characters above the BMP while punctuation
    is removed) and installs without the C extension take the Python path."""
    from dedup_audit.engine.kernels import native_module

    native = native_module()
    if native is None:
        return [normalize(t, cfg) for t in texts]
    pre = [t if t.isascii() else _nfkc_lower(t, cfg) for t in texts]
    table = _punctuation_table() if cfg.punctuation else None
    out: list[str | None] = native.normalize(pre, cfg.lowercase, table, cfg.whitespace)
    return [o if o is not None else normalize(t, cfg) for o, t in zip(out, texts, strict=True)]


def _nfkc_lower(text: str, cfg: NormalizeConfig) -> str:
    """The first two steps of `normalize`: NFKC, then lowercasing (as configured)."""
    if cfg.nfkc:
        text = unicodedata.normalize("NFKC", text)
    return text.lower() if cfg.lowercase else text


def build_views(
    records: Sequence[Record], view: str, cfg: NormalizeConfig
) -> tuple[list[str], list[str]]:
    """(raw texts, normalised texts) of one view for every record, in record order."""
    raw = [view_text(r.sample, view) for r in records]
    return raw, normalize_many(raw, cfg)


def is_cjk(text: str, min_ratio: float = 0.3) -> bool:
    """True when CJK characters make up at least `min_ratio` of the non-space characters."""
    chars = len(_WS.sub("", text))
    if not chars:
        return False
    return len(_CJK.findall(text)) / chars >= min_ratio


def shingle_mode(texts: Sequence[str], cfg: MinHashConfig) -> str:
    """Resolve `shingle="auto"` once per view for the whole corpus, so every text of a view is
    shingled the same way (mixing modes would make Jaccard meaningless between them)."""
    if cfg.shingle != "auto":
        return cfg.shingle
    sample = [t for t in texts if t][:2000]
    if not sample:
        return "word"
    cjk = sum(1 for t in sample if is_cjk(t))
    return "char" if cjk / len(sample) >= 0.2 else "word"


def shingles(text: str, mode: str, cfg: MinHashConfig) -> set[str]:
    """Word n-grams (mode "word") or character n-grams over the text without spaces ("char").

    Texts shorter than one n-gram yield a single shingle of the whole text, so short prompts
    ("hi", "你好") still compare instead of silently dropping out.
    """
    if mode == "char":
        compact = _WS.sub("", text)
        n = cfg.char_ngram
        if len(compact) <= n:
            return {compact} if compact else set()
        return {compact[i : i + n] for i in range(len(compact) - n + 1)}
    words = _WORD.findall(text)
    n = cfg.ngram
    if len(words) <= n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
