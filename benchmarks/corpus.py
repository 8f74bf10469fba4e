"""Seeded SFT corpora built from real text, with labelled exact and near copies, for engine benchmarks.

Why: speed claims need a corpus anyone can rebuild byte for byte, big enough to matter (50k, 200k,
1M rows), made of real SFT text (lengths, vocabulary, templated prompts), and recall/precision need
labels. This writes, streamed (constant memory whatever --rows):

  corpus-<rows>-s<seed>.jsonl          alpaca rows {"instruction", "input", "output"}
  corpus-<rows>-s<seed>.labels.jsonl   one planted copy per line: {"copy", "source", "kind",
                                       "edits", "jaccard"} (row indices, 0-based; jaccard = exact
                                       word-3-gram Jaccard of the normalised full view)
  corpus-<rows>-s<seed>.meta.json      options, counts, pool composition, sha256 of the corpus

How the rows are made:
1. Pool: the real rows of gsm8k train, GPTeacher Toolformer (dedupe-only), LLaMA-Factory's
   alpaca_en_demo / alpaca_zh_demo / dpo_en_demo (first turn + chosen answer), OASST zh (history
   dropped) and c4_demo (first sentence as instruction, the rest as output). A pool row is dropped
   when its exact Jaccard to an earlier kept row is >= --distinct-below (default 0.5), checked
   exhaustively (prefix-filter similarity join), so the pool holds no near duplicates.
2. Filler: variant 0 of a pool row is the row itself; variant v >= 1 replaces --replace (30%) of
   its tokens (words; characters for CJK sources) with tokens drawn from the same source, seeded by
   (seed, position). Two variants share about 12% of their shingles, a variant and its original
   about 21%: far below any near-duplicate threshold, while lengths and vocabulary stay real.
3. Copies: --copy-rate (10%) of positions hold copies of a filler row elsewhere in the corpus:
   exact (4%), norm (1%: case and whitespace changed, identical after normalisation), near-1-2,
   near-3-5 (2% each) and near-6-10 (1%) word edits (substitute, delete or insert). A source may
   get several copies.

Every row is a pure function of (seed, position), so writing streams; 1M rows take a few minutes
and little memory. `--verify` re-reads the written corpus and checks, exhaustively, that every
pair with Jaccard >= --distinct-below is a labelled copy (or two copies of one source) and that
the labels' Jaccard values are right; it also checks this script's normalisation against
dedup_audit.views when the project is importable. Meant for 50k rows (Python, a few minutes).

    .venv/bin/python benchmarks/corpus.py --rows 50000 --verify
    .venv/bin/python benchmarks/corpus.py --rows 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from common import full_view, jaccard, normalize, shingles

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("DEDUP_AUDIT_DATA", "/work/shared/data"))
WORK = HERE / "_work"
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_SPLIT = re.compile(r"(\s+)")
FIELDS = ("instruction", "input", "output")
POOL_VERSION = 1  # bump when build_pool's rule changes
CHUNK = 5000  # rows per worker task; the output is the same whatever the worker count
# (kind, share of all rows, min edits, max edits)
KINDS: tuple[tuple[str, float, int, int], ...] = (
    ("exact", 0.04, 0, 0),
    ("norm", 0.01, 0, 0),
    ("near-1-2", 0.02, 1, 2),
    ("near-3-5", 0.02, 3, 5),
    ("near-6-10", 0.01, 6, 10),
)

Row = dict[str, str]


@dataclass
class Source:
    name: str
    cjk: bool
    rows: list[Row]
    vocab: list[str]  # tokens to draw replacements and insertions from (frequency-weighted)


def _alpaca(name: str, rows: Iterable[dict[str, object]], response: str = "output") -> list[Row]:
    out = []
    for r in rows:
        row = {
            "instruction": str(r.get("instruction") or ""),
            "input": str(r.get("input") or ""),
            "output": str(r.get(response) or ""),
        }
        if row["instruction"].strip() and row["output"].strip():
            out.append(row)
    return out


def _dpo(path: Path) -> list[Row]:
    out = []
    for r in json.loads(path.read_text(encoding="utf-8")):
        conv = r.get("conversations") or []
        if len(conv) == 1 and conv[0].get("from") == "human":
            out.append(
                {"instruction": conv[0]["value"], "input": "", "output": r["chosen"]["value"]}
            )
    return out


def _c4(path: Path) -> list[Row]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line)["text"].strip()
            head, dot, tail = text.partition(". ")
            if tail:
                out.append({"instruction": head + dot.strip(), "input": "", "output": tail})
    return out


def load_sources() -> list[Source]:
    """The real rows, per source, in file order."""

    def js(rel: str) -> list[dict[str, object]]:
        data: list[dict[str, object]] = json.loads((DATA / rel).read_text(encoding="utf-8"))
        return data

    raw: list[tuple[str, list[Row]]] = [
        ("gsm8k", _alpaca("gsm8k", js("gsm8k/train_alpaca.json"))),
        (
            "gpteacher",
            _alpaca("gpteacher", js("gpteacher/toolformer-dedupe-only-dataset.json"), "response"),
        ),
        ("alpaca_en", _alpaca("alpaca_en", js("llamafactory/alpaca_en_demo.json"))),
        ("alpaca_zh", _alpaca("alpaca_zh", js("llamafactory/alpaca_zh_demo.json"))),
        ("oasst_zh", _alpaca("oasst_zh", js("oasst_zh/oaast_sft_zh.json"))),
        ("dpo_en", _dpo(DATA / "llamafactory/dpo_en_demo.json")),
        ("c4", _c4(DATA / "llamafactory/c4_demo.jsonl")),
    ]
    sources = []
    for name, rows in raw:
        cjk = name.endswith("_zh")
        vocab: list[str] = []
        for row in rows:
            for f in FIELDS:
                vocab += _tokens(row[f], cjk)
        sources.append(Source(name, cjk, rows, [t for t in vocab if not t.isspace()]))
    return sources


def _tokens(text: str, cjk: bool) -> list[str]:
    """Editable units: characters for CJK text (no spaces to split on), else words with the
    whitespace between them kept as their own tokens so newlines survive."""
    if cjk:
        return list(text)
    return [t for t in _SPLIT.split(text) if t]


def full_shingles(row: Row) -> set[str]:
    return shingles(normalize(full_view(row)))


def similar_pairs(sets: Sequence[set[str]], threshold: float) -> list[tuple[int, int, float]]:
    """Every pair (i < j) with exact Jaccard >= threshold: prefix filtering (tokens ordered by
    global frequency, rarest first; two sets with Jaccard >= t must share one of their first
    |s| - ceil(t |s|) + 1 tokens), then exact verification. Exhaustive, no sampling."""
    freq: Counter[str] = Counter()
    for s in sets:
        freq.update(s)
    index: dict[str, list[int]] = {}
    found = []
    for j, s in enumerate(sets):
        if not s:
            continue
        ordered = sorted(s, key=lambda t: (freq[t], t))
        plen = len(s) - math.ceil(threshold * len(s)) + 1
        seen: set[int] = set()
        for tok in ordered[:plen]:
            for i in index.get(tok, ()):
                if i in seen:
                    continue
                seen.add(i)
                other = sets[i]
                if threshold * len(s) <= len(other) <= len(s) / threshold:
                    inter = len(other & s)
                    jac = inter / (len(other) + len(s) - inter)
                    if jac >= threshold:
                        found.append((i, j, jac))
            index.setdefault(tok, []).append(j)
    return found


def build_pool(sources: list[Source], distinct_below: float) -> list[tuple[int, Row]]:
    """(source number, row) for every real row kept: exact and near duplicates (Jaccard >=
    distinct_below to an earlier row) dropped, first one kept. The join takes a minute on the
    templated GPTeacher prompts, so the kept positions are cached under _work/ keyed by the
    source texts and the threshold."""
    rows = [(k, row) for k, src in enumerate(sources) for row in src.rows]
    key = hashlib.sha256(repr((POOL_VERSION, distinct_below)).encode())
    for _, row in rows:
        key.update(json.dumps(row, sort_keys=True).encode())
    cache = WORK / f"pool-{key.hexdigest()[:16]}.json"
    if cache.exists():
        keep = json.loads(cache.read_text())
    else:
        sets = [full_shingles(row) for _, row in rows]
        drop = {j for _, j, _ in similar_pairs(sets, distinct_below)}
        keep = [i for i in range(len(rows)) if i not in drop]
        WORK.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp")
        tmp.write_text(json.dumps(keep))
        tmp.replace(cache)
    return [rows[i] for i in keep]


def _rng(seed: int, *keys: int) -> random.Random:
    return random.Random(hashlib.blake2b(repr((seed, *keys)).encode(), digest_size=8).digest())


Tokens = dict[str, tuple[list[str], list[int]]]  # field -> (tokens, positions of non-space ones)


def tokenize_row(row: Row, cjk: bool) -> Tokens:
    out = {}
    for f in FIELDS:
        toks = _tokens(row[f], cjk)
        out[f] = (toks, [i for i, t in enumerate(toks) if not t.isspace()])
    return out


def variant(toks: Tokens, src: Source, v: int, seed: int, pos: int, replace: float) -> Row:
    """Variant 0 is the row; v >= 1 replaces a share of its tokens with tokens of its source."""
    if v == 0:
        return {f: "".join(toks[f][0]) for f in FIELDS}
    rng = _rng(seed, 1, pos)
    out = {}
    for f in FIELDS:
        words, slots = toks[f]
        words = list(words)
        k = min(len(slots), max(1, round(replace * len(slots)))) if slots else 0
        for i, word in zip(
            rng.sample(slots, k), rng.choices(src.vocab, k=k) if k else (), strict=True
        ):
            words[i] = word
        out[f] = "".join(words)
    return out


def edit(row: Row, src: Source, edits: int, rng: random.Random) -> Row:
    """A near copy: `edits` word (CJK: character) substitutions, deletions or insertions, each
    in a field drawn by its length."""
    toks = {f: _tokens(row[f], src.cjk) for f in FIELDS}
    for _ in range(edits):
        weights = [sum(1 for t in toks[f] if not t.isspace()) for f in FIELDS]
        f = rng.choices(FIELDS, weights=weights)[0] if sum(weights) else "output"
        words = toks[f]
        slots = [i for i, t in enumerate(words) if not t.isspace()]
        op = rng.choice(("sub", "del", "ins")) if len(slots) > 1 else "ins"
        new = rng.choice(src.vocab)
        if op == "sub":
            words[rng.choice(slots)] = new
        elif op == "del":
            i = rng.choice(slots)
            del words[i]
            if not src.cjk and i < len(words) and words[i].isspace():
                del words[i]  # and one space, so the rest reads as before
        else:
            i = rng.choice(slots) if slots else 0
            words[i:i] = [new] if src.cjk else [new, " "]
    return {f: "".join(toks[f]) for f in FIELDS}


def reformat(row: Row, rng: random.Random) -> Row:
    """Same text after normalisation: a few words upper-cased, doubled spaces, trailing newline."""
    out = {}
    for f in FIELDS:
        toks = _tokens(row[f], False)
        words = [i for i, t in enumerate(toks) if not t.isspace()]
        for i in rng.sample(words, min(3, len(words))):
            toks[i] = toks[i].upper()
        out[f] = "".join(t + " " if t.isspace() and rng.random() < 0.3 else t for t in toks)
    out["output"] += "\n"
    return out


@dataclass
class Plan:
    """Which positions are copies, of what, and which filler each other position holds."""

    is_copy: np.ndarray  # bool per position
    copy_kind: dict[int, int]  # position -> index into KINDS
    copy_source: dict[int, int]  # position -> source position (a filler row)
    filler_rank: np.ndarray  # per position: its rank among filler positions (-1 for copies)


def plan(rows: int, seed: int, copy_rate: float) -> Plan:
    rng = np.random.default_rng(seed)
    total = sum(share for _, share, _, _ in KINDS)
    counts = [int(rows * copy_rate * share / total) for _, share, _, _ in KINDS]
    positions = rng.choice(rows, size=sum(counts), replace=False)
    is_copy = np.zeros(rows, dtype=bool)
    is_copy[positions] = True
    fillers = np.flatnonzero(~is_copy)
    sources = fillers[rng.integers(0, len(fillers), size=len(positions))]
    kinds = np.repeat(np.arange(len(KINDS)), counts)
    rank = np.cumsum(~is_copy) - 1
    rank[is_copy] = -1
    return Plan(
        is_copy,
        {int(p): int(k) for p, k in zip(positions, kinds, strict=True)},
        {int(p): int(s) for p, s in zip(positions, sources, strict=True)},
        rank,
    )


class Generator:
    def __init__(self, seed: int, replace: float, distinct_below: float) -> None:
        self.seed = seed
        self.replace = replace
        self.sources = load_sources()
        pool = build_pool(self.sources, distinct_below)
        order = random.Random(seed).sample(range(len(pool)), len(pool))
        self.pool = [pool[i] for i in order]
        self._tokens: dict[int, Tokens] = {}

    def filler(self, rank: int, pos: int) -> Row:
        i = rank % len(self.pool)
        k, row = self.pool[i]
        toks = self._tokens.get(i)
        if toks is None:
            toks = self._tokens[i] = tokenize_row(row, self.sources[k].cjk)
        return variant(toks, self.sources[k], rank // len(self.pool), self.seed, pos, self.replace)

    def source_of(self, rank: int) -> Source:
        return self.sources[self.pool[rank % len(self.pool)][0]]


# Set before the worker pool forks, so workers inherit them instead of receiving them pickled.
_GEN: Generator | None = None
_PLAN: Plan | None = None

Chunk = tuple[bytes, str, Counter[str], Counter[str]]


def _chunk(span: tuple[int, int]) -> Chunk:
    """Rows start..end-1 as JSONL bytes, their labels, and counts by kind and by Jaccard band."""
    gen, p = _GEN, _PLAN
    assert gen is not None and p is not None
    lines: list[bytes] = []
    labels: list[str] = []
    kinds: Counter[str] = Counter()
    bands: Counter[str] = Counter()
    for pos in range(*span):
        if p.is_copy[pos]:
            src_pos = p.copy_source[pos]
            rank = int(p.filler_rank[src_pos])
            base = gen.filler(rank, src_pos)
            kind, _, lo, hi = KINDS[p.copy_kind[pos]]
            rng = _rng(gen.seed, 2, pos)
            edits = rng.randint(lo, hi) if hi else 0
            if kind == "exact":
                row = dict(base)
            elif kind == "norm":
                row = reformat(base, rng)
            else:
                row = edit(base, gen.source_of(rank), edits, rng)
            jac = 1.0
            if kind not in ("exact", "norm"):
                jac = jaccard(full_shingles(base), full_shingles(row))
            label = {"copy": pos, "source": src_pos, "kind": kind, "edits": edits}
            labels.append(json.dumps({**label, "jaccard": round(jac, 6)}) + "\n")
            kinds[kind] += 1
            bands[band(jac)] += 1
        else:
            row = gen.filler(int(p.filler_rank[pos]), pos)
        lines.append((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    return b"".join(lines), "".join(labels), kinds, bands


def write_corpus(
    rows: int,
    seed: int,
    out_dir: Path,
    copy_rate: float,
    replace: float,
    distinct_below: float,
    workers: int = os.cpu_count() or 1,
) -> Path:
    """Stream the corpus, labels and meta into out_dir (each written to a temp name, then moved)."""
    global _GEN, _PLAN
    t0 = time.perf_counter()
    gen = _GEN = Generator(seed, replace, distinct_below)
    _PLAN = plan(rows, seed, copy_rate)
    stem = out_dir / f"corpus-{rows}-s{seed}"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: stem.with_name(stem.name + ext) for ext in (".jsonl", ".labels.jsonl")}
    tmp = {ext: q.with_name(q.name + ".tmp") for ext, q in paths.items()}
    digest = hashlib.sha256()
    kinds: Counter[str] = Counter()
    bands: Counter[str] = Counter()
    spans = [(a, min(rows, a + CHUNK)) for a in range(0, rows, CHUNK)]
    with (
        tmp[".jsonl"].open("wb") as data,
        tmp[".labels.jsonl"].open("w") as labels,
        multiprocessing.get_context("fork").Pool(max(1, workers)) as pool,
    ):
        for lines, label_lines, k, b in pool.imap(_chunk, spans):
            digest.update(lines)
            data.write(lines)
            labels.write(label_lines)
            kinds.update(k)
            bands.update(b)
    for ext, q in paths.items():
        tmp[ext].replace(q)
    pool_by_source = Counter(gen.sources[k].name for k, _ in gen.pool)
    meta = {
        "rows": rows,
        "seed": seed,
        "copy_rate": copy_rate,
        "replace": replace,
        "distinct_below": distinct_below,
        "pool_rows": len(gen.pool),
        "pool_by_source": dict(sorted(pool_by_source.items())),
        "real_rows_by_source": {s.name: len(s.rows) for s in gen.sources},
        "copies_by_kind": dict(sorted(kinds.items())),
        "copies_by_jaccard_band": dict(sorted(bands.items())),
        "sha256": digest.hexdigest(),
        "generator": "benchmarks/corpus.py",
    }
    meta_path = stem.with_name(stem.name + ".meta.json")
    tmp_meta = meta_path.with_name(meta_path.name + ".tmp")
    tmp_meta.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    tmp_meta.replace(meta_path)
    size = paths[".jsonl"].stat().st_size
    print(f"wrote {paths['.jsonl']} ({rows:,} rows, {size / 1e6:.0f} MB) in "
          f"{time.perf_counter() - t0:.1f}s; pool {len(gen.pool):,} distinct real rows "
          f"{dict(sorted(pool_by_source.items()))}")  # fmt: skip
    print(
        f"copies by kind {dict(sorted(kinds.items()))}; by Jaccard band {dict(sorted(bands.items()))}"
    )
    return paths[".jsonl"]


BANDS = ((1.0, "=1.0"), (0.9, "[0.9,1)"), (0.8, "[0.8,0.9)"), (0.7, "[0.7,0.8)"), (0.0, "<0.7"))


def band(jac: float) -> str:
    """Jaccard band of a labelled copy; >= 0.8 is the scan's threshold."""
    return next(name for lo, name in BANDS if jac >= lo)


def verify(corpus: Path, distinct_below: float) -> bool:
    """Exhaustive check of a written corpus: all pairs >= distinct_below are labelled copies (or
    two copies of one source, or a copy and another copy's source), and label Jaccards are right."""
    t0 = time.perf_counter()
    labels = [json.loads(x) for x in corpus.with_name(corpus.stem + ".labels.jsonl").open()]
    root = {int(x["copy"]): int(x["source"]) for x in labels}
    sets = [full_shingles(json.loads(line)) for line in corpus.open(encoding="utf-8")]
    ok = True
    bad_labels = [
        x for x in labels if abs(jaccard(sets[x["copy"]], sets[x["source"]]) - x["jaccard"]) > 1e-6
    ]
    if bad_labels:
        ok = False
        print(f"FAIL: {len(bad_labels)} labels with a wrong Jaccard, e.g. {bad_labels[0]}")
    pairs = similar_pairs(sets, distinct_below)
    stray = [(i, j, s) for i, j, s in pairs if root.get(i, i) != root.get(j, j)]
    print(f"verify {corpus.name}: {len(sets):,} rows, {len(pairs):,} pairs with Jaccard >= "
          f"{distinct_below} (all explained by labels: {not stray}), "
          f"{len(labels):,} labels checked, {time.perf_counter() - t0:.0f}s")  # fmt: skip
    if stray:
        ok = False
        print(f"FAIL: {len(stray)} unlabelled similar pairs, e.g. {stray[:5]}")
    return ok and check_views(corpus)


def check_views(corpus: Path, n: int = 2000) -> bool:
    """peers/common.py's normalisation and shingles equal dedup_audit.views' on n rows."""
    try:
        from dedup_audit.config import MinHashConfig, NormalizeConfig
        from dedup_audit.records import Sample, Turn
        from dedup_audit.views import normalize as da_normalize
        from dedup_audit.views import shingles as da_shingles
        from dedup_audit.views import view_text
    except ImportError:
        print("dedup_audit not importable: normalisation check skipped")
        return True
    bad = 0
    with corpus.open(encoding="utf-8") as fh:
        for _, line in zip(range(n), fh, strict=False):
            row = json.loads(line)
            user = "\n".join(q for q in (row["instruction"], row["input"]) if q)
            sample = Sample(turns=(Turn("user", user), Turn("assistant", row["output"])))
            ref = da_normalize(view_text(sample, "full"), NormalizeConfig())
            if ref != normalize(full_view(row)) or da_shingles(
                ref, "word", MinHashConfig()
            ) != shingles(ref):
                bad += 1
    print(f"normalisation and shingles equal to dedup_audit.views on {n} rows: {bad == 0}")
    return bad == 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="example: .venv/bin/python benchmarks/corpus.py --rows 50000 --verify",
    )
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", type=Path, default=WORK)
    ap.add_argument("--copy-rate", type=float, default=0.10, help="share of rows that are copies")
    ap.add_argument("--replace", type=float, default=0.30, help="token share replaced per variant")
    ap.add_argument("--distinct-below", type=float, default=0.5)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    ap.add_argument("--verify", action="store_true", help="exhaustive distinctness check (50k)")
    ap.add_argument("--force", action="store_true", help="rewrite an existing corpus")
    args = ap.parse_args(argv)
    path = args.out_dir / f"corpus-{args.rows}-s{args.seed}.jsonl"
    if args.force or not path.exists():
        write_corpus(
            args.rows,
            args.seed,
            args.out_dir,
            args.copy_rate,
            args.replace,
            args.distinct_below,
            args.workers,
        )
    else:
        print(f"{path} exists (--force to rewrite)")
    if args.verify:
        return 0 if verify(path, args.distinct_below) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
