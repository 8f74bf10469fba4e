"""Semantic dedup precision on SFT data: GSM8K train with planted copies at three edit levels.

GSM8K train holds natural "inverse" problems (the same story asking for another unknown, with
another answer) that embeddings put at cosine 0.95-0.99: removing one of them deletes a distinct
task. The set: the first N rows of GSM8K train (alpaca format) untouched, plus one planted copy
of `--plant` of them at each edit level, each copy inserted at a seeded random position:

- surface: case, spacing and punctuation changes only;
- few: two or three word edits (synonyms, a dropped filler word) in the prompt and response;
- heavy: a third of the words swapped for synonyms or dropped, and the prompt's context
  sentences reordered (the question stays last); numbers are never edited, so the task and the
  answer are the same.

Scores: recall per level = share of planted pairs where exactly one of the two copies is removed;
false removals = removed rows that belong to no planted pair, plus pairs that lost both copies.

    .venv/bin/python benchmarks/gsm8k_planted.py --rows 2550 --plant 300 --out /tmp/gsm8k_planted
    .venv/bin/python benchmarks/gsm8k_planted.py --rows 2550 --plant 300 --score-only  # reuse

`--write PATH` only writes the built dataset (alpaca JSON) plus its labels (PATH.labels.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SRC = Path("/work/shared/data/gsm8k/train_alpaca.json")

SYNONYMS = {
    "has": "owns",
    "have": "own",
    "buys": "purchases",
    "bought": "purchased",
    "sells": "sold off",
    "gives": "hands",
    "gave": "handed",
    "each": "every",
    "many": "numerous",
    "total": "overall",
    "much": "a lot",
    "more": "additional",
    "wants": "would like",
    "needs": "requires",
    "makes": "produces",
    "spent": "paid",
    "spends": "pays",
    "costs": "is priced at",
    "money": "cash",
    "friends": "pals",
    "store": "shop",
    "week": "week's time",
    "day": "day's time",
    "then": "after that",
    "also": "as well",
    "half": "one half",
    "twice": "two times",
    "so": "therefore",
    "big": "large",
    "small": "little",
    "altogether": "in all",
    "remaining": "left over",
    "left": "remaining",
    "earns": "makes",
    "takes": "needs",
    "fast": "quickly",
    "started": "began",
    "finished": "completed",
    "children": "kids",
    "people": "persons",
    "car": "vehicle",
    "house": "home",
    "job": "work",
    "gets": "receives",
    "got": "received",
    "picked": "collected",
    "uses": "utilizes",
}
FILLERS = {"the", "a", "an", "just", "only", "really", "very", "of", "that"}
_NUM = re.compile(r"\d")


def surface(text: str, rng: random.Random) -> str:
    out = text
    if rng.random() < 0.5:
        out = out.lower()
    out = out.replace(", ", " , ") if rng.random() < 0.5 else out.replace(". ", ".  ")
    return out.rstrip(".?") + (" ?" if text.endswith("?") else "")


def word_edits(text: str, rng: random.Random, rate: float, min_edits: int) -> str:
    words = text.split(" ")
    slots = [i for i, w in enumerate(words) if not _NUM.search(w)]
    edits = max(min_edits, round(rate * len(slots)))
    rng.shuffle(slots)
    done = 0
    for i in slots:
        if done >= edits:
            break
        bare = words[i].strip(".,?!").lower()
        if bare in SYNONYMS:
            words[i] = words[i].lower().replace(bare, SYNONYMS[bare])
            done += 1
        elif bare in FILLERS:
            words[i] = ""
            done += 1
    return " ".join(w for w in words if w)


def reorder(prompt: str, rng: random.Random) -> str:
    sents = re.split(r"(?<=[.!])\s+", prompt.strip())
    if len(sents) < 3:
        return prompt
    head, question = sents[:-1], sents[-1]
    rng.shuffle(head)
    return " ".join([*head, question])


def plant(row: dict[str, str], level: str, rng: random.Random) -> dict[str, str]:
    p, r = row["instruction"], row["output"]
    if level == "surface":
        p, r = surface(p, rng), surface(r, rng)
    elif level == "few":
        p, r = word_edits(p, rng, 0.0, 2), word_edits(r, rng, 0.0, 1)
    else:
        p = word_edits(reorder(p, rng), rng, 0.33, 4)
        r = word_edits(r, rng, 0.33, 4)
    return {"instruction": p, "input": row.get("input", ""), "output": r}


def build(rows: int, per_level: int, seed: int) -> tuple[list[dict[str, str]], dict[str, object]]:
    """(dataset rows, labels): labels["pairs"] = [[original position, copy position, level]]."""
    rng = random.Random(seed)
    base = json.loads(SRC.read_text(encoding="utf-8"))[:rows]
    chosen = rng.sample(range(rows), 3 * per_level)
    items: list[tuple[dict[str, str], int | None, str]] = [(r, None, "") for r in base]
    copies = []
    for k, idx in enumerate(chosen):
        level = ("surface", "few", "heavy")[k // per_level]
        copies.append((plant(base[idx], level, rng), idx, level))
    for c in copies:  # copies land at random positions after their original
        pos = rng.randint(0, len(items))
        items.insert(pos, c)
    where = {id(it[0]): n for n, it in enumerate(items)}
    orig_pos = {i: where[id(base[i])] for i in range(rows)}
    pairs = [[orig_pos[src], n, lvl] for n, (_, src, lvl) in enumerate(items) if src is not None]
    return [it[0] for it in items], {"pairs": sorted(pairs), "rows": len(items)}


def score(removed: set[int], labels: dict[str, object]) -> dict[str, object]:
    pairs = labels["pairs"]
    assert isinstance(pairs, list)
    in_pair = {m for a, b, _ in pairs for m in (a, b)}
    out: dict[str, object] = {}
    for level in ("surface", "few", "heavy"):
        ps = [(a, b) for a, b, lvl in pairs if lvl == level]
        hit = sum(1 for a, b in ps if (a in removed) != (b in removed))
        out[f"recall_{level}"] = round(hit / len(ps), 4) if ps else None
    both = sum(1 for a, b, _ in pairs if a in removed and b in removed)
    stray = sorted(m for m in removed if m not in in_pair)
    out["false_removals"] = len(stray) + both
    out["untouched_removed"] = len(stray)
    out["pairs_losing_both"] = both
    out["removed"] = len(removed)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=2550)
    ap.add_argument("--plant", type=int, default=300, help="planted copies per edit level")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("/tmp/gsm8k_planted"))
    ap.add_argument("--write", type=Path, help="only write the dataset (+ .labels.json) here")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--cluster", default="auto")
    args = ap.parse_args()
    data, labels = build(args.rows, args.plant, args.seed)
    if args.write:
        args.write.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        Path(f"{args.write}.labels.json").write_text(json.dumps(labels), encoding="utf-8")
        return
    from dedup_audit.config import ScanConfig, SemanticConfig
    from dedup_audit.pipeline import scan
    from dedup_audit.readers import load_dataset

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "data.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    ds = load_dataset(path)
    cfg = ScanConfig(
        semantic=SemanticConfig(
            enabled=True, backend=args.backend, cache_dir=str(args.out / "cache")
        ),
        cluster=args.cluster,
    )
    t0 = time.perf_counter()
    result = scan(ds, cfg)
    wall = time.perf_counter() - t0
    removed = {d.index for d in result.removed}
    res = score(removed, labels)
    kinds: dict[str, int] = {}
    for c in result.clusters:
        if c.view == cfg.dedup_view:
            kinds[c.kind] = kinds.get(c.kind, 0) + 1
    res["dedup_view_clusters"] = kinds
    res["scan_s"] = round(wall, 1)
    in_pair = {m for a, b, _ in labels["pairs"] for m in (a, b)}  # type: ignore[union-attr]
    for d in result.removed:
        if d.index not in in_pair:
            twin = d.kept_twin if d.kept_twin is not None else -1
            print(f"FALSE {d.index} <- {twin} {d.reason} {d.score}")
            print("   ", data[d.index]["instruction"][:150])
            print("   ", data[twin]["instruction"][:150] if twin >= 0 else "")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
