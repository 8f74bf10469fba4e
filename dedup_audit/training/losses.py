"""Per-sample losses: the schema both producers write and the report reads, plus its validation.

Schema (one row per sample per measured epoch or checkpoint; JSONL, Parquet or CSV)::

    {"key": "alpaca_en_demo.json:12",  # dataset record id ("<file name>:<row>" or --id-column)
                                       #   OR the content hash dedup_audit.records.sample_key(sample)
     "epoch": 2.0,                     # float; 0.0 = the base model before training
     "step": 40,                       # int or null: global step of the checkpoint
     "checkpoint": "checkpoint-40",    # str or null
     "loss": 1.234,                    # mean token cross-entropy over the response tokens
     "split": "train"}                 # optional: "train" (default) or "heldout"

Instead of `loss` a row may carry `loss_sum` + `n_tokens` (loss = loss_sum / n_tokens), which lets a
recorder add up token losses across micro-batches exactly. Extra fields are kept aside and ignored.

Why keys can be either: `dedup-audit losses` scores the dataset file and knows row ids; a recorder
inside LLaMA-Factory sees only tokenized, shuffled rows and can only hash their content. Exact
duplicates share a content hash, so a hash key stands for every copy.

Validation never drops data silently: non-finite losses, rows from a resumed run that repeat a
(key, epoch), keys missing some epochs, and keys that do not join the dataset are each counted with
a few examples in `LossTable.issues`, which the report shows.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dedup_audit.errors import InputError

SPLITS = ("train", "heldout")
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class LossRow:
    key: str
    epoch: float
    loss: float
    step: int | None = None
    checkpoint: str | None = None
    split: str = "train"
    n_tokens: int | None = None
    line: int = 0  # 1-based line / row number in the source file, for messages
    content_key: str | None = None  # sample_key of the row's content, when the producer knows it
    scored_with: str | None = None  # template / cutoff the scorer used, and where they came from


@dataclass
class Issue:
    """One validation finding: what, how many, a few examples, and what the report did about it."""

    kind: str
    count: int
    message: str
    examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "message": self.message,
            "examples": self.examples,
        }


@dataclass
class LossTable:
    """Validated per-sample losses: one value per (split, key, epoch), last row wins."""

    rows: list[LossRow]
    path: str
    issues: list[Issue] = field(default_factory=list)
    raw_rows: int = 0

    def epochs(self, split: str = "train") -> list[float]:
        return sorted({r.epoch for r in self.rows if r.split == split})

    def keys(self, split: str = "train") -> list[str]:
        return sorted({r.key for r in self.rows if r.split == split})

    def by_key(self, split: str = "train") -> dict[str, dict[float, float]]:
        out: dict[str, dict[float, float]] = defaultdict(dict)
        for r in self.rows:
            if r.split == split:
                out[r.key][r.epoch] = r.loss
        return dict(out)

    def content_keys(self) -> dict[str, str]:
        return {r.key: r.content_key for r in self.rows if r.content_key}

    def scored_with(self) -> list[str]:
        """The distinct scoring settings the rows record (`dedup-audit losses` writes them)."""
        return sorted({r.scored_with for r in self.rows if r.scored_with})

    def steps(self) -> dict[float, int]:
        """Epoch -> global step of that measurement, where rows say it."""
        out: dict[float, int] = {}
        for r in self.rows:
            if r.step is not None:
                out.setdefault(r.epoch, r.step)
        return out


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("r", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{path}:{n}: not valid JSON ({exc.msg}); each line must be one loss row object"
                ) from exc
            if not isinstance(obj, dict):
                raise InputError(
                    f"{path}:{n}: expected a JSON object per line, got {type(obj).__name__}"
                )
            yield n, obj


def _iter_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("r", encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), 2):
            yield n, {k: (None if v == "" else v) for k, v in row.items() if k is not None}


def _iter_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise InputError(f"{path}: cannot read as Parquet ({exc})") from exc
    yield from enumerate(table.to_pylist(), 1)


def _iter_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return _iter_jsonl(path)
    if suffix == ".csv":
        return _iter_csv(path)
    if suffix in (".parquet", ".pq"):
        return _iter_parquet(path)
    raise InputError(f"{path}: unknown losses file type {suffix!r}; use .jsonl, .parquet or .csv")


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _parse(path: Path, n: int, obj: Mapping[str, Any], split: str | None) -> LossRow | str:
    """A LossRow, or a string saying why the row's loss is unusable (non-finite etc.)."""
    key = obj.get("key", obj.get("id"))
    if key is None or key == "":
        raise InputError(
            f"{path}:{n}: row has no 'key'; each row needs key, epoch and loss "
            "(or loss_sum + n_tokens) - see `dedup_audit.training.losses`"
        )
    epoch = _num(obj.get("epoch"))
    if epoch is None or not math.isfinite(epoch):
        raise InputError(
            f"{path}:{n}: row for key {key!r} has no numeric 'epoch'; give the checkpoint's epoch "
            "(0 for the base model)"
        )
    n_tokens_f = _num(obj.get("n_tokens"))
    n_tokens = int(n_tokens_f) if n_tokens_f is not None and math.isfinite(n_tokens_f) else None
    loss = _num(obj.get("loss"))
    if loss is None:
        loss_sum = _num(obj.get("loss_sum"))
        if loss_sum is None or n_tokens_f is None:
            if "loss" in obj or "loss_sum" in obj:
                return f"line {n}: key={key} epoch={epoch:g} loss={obj.get('loss', obj.get('loss_sum'))!r}"
            raise InputError(
                f"{path}:{n}: row for key {key!r} has neither 'loss' nor 'loss_sum' + 'n_tokens'"
            )
        if n_tokens_f <= 0:
            return f"line {n}: key={key} epoch={epoch:g} n_tokens={n_tokens_f:g}"
        loss = loss_sum / n_tokens_f
    if not math.isfinite(loss):
        return f"line {n}: key={key} epoch={epoch:g} loss={loss}"
    row_split = split or str(obj.get("split") or "train")
    if row_split not in SPLITS:
        raise InputError(f"{path}:{n}: split must be 'train' or 'heldout', got {row_split!r}")
    step_f = _num(obj.get("step"))
    ckpt = obj.get("checkpoint")
    ck = obj.get("content_key")
    sw = obj.get("scored_with")
    return LossRow(
        key=str(key),
        epoch=round(epoch, 6),
        loss=loss,
        step=int(step_f) if step_f is not None and math.isfinite(step_f) else None,
        checkpoint=str(ckpt) if ckpt is not None else None,
        split=row_split,
        n_tokens=n_tokens,
        line=n,
        content_key=str(ck) if ck else None,
        scored_with=str(sw) if sw else None,
    )


def is_recorded(rows: list[LossRow]) -> bool:
    """Rows from a training-time recorder: no checkpoint and fractional epochs (the training
    progress when the forward pass ran), rather than one row per checkpoint."""
    train = [r for r in rows if r.split == "train"]
    if not train or any(r.checkpoint for r in train):
        return False
    frac = sum(1 for r in train if abs(r.epoch - round(r.epoch)) > 1e-6)
    return frac > 0.5 * len(train)


def bin_recorded(rows: list[LossRow]) -> tuple[list[LossRow], Issue | None]:
    """Recorder rows -> one row per (split, key, completed passes): epoch label = floor(epoch),
    i.e. the loss after that many full passes, like a checkpoint at that epoch. Rows repeating a
    (key, step) come from a resumed run (last kept); several rows of one key in a pass (copies of
    a duplicate) are averaged, token-weighted when n_tokens is known."""
    by_step: dict[tuple[str, str, int | None, float], LossRow] = {}
    for r in rows:
        by_step[(r.split, r.key, r.step, r.epoch if r.step is None else 0.0)] = r
    groups: dict[tuple[str, str, float], list[LossRow]] = defaultdict(list)
    for r in by_step.values():
        groups[(r.split, r.key, float(math.floor(r.epoch + 1e-9)))].append(r)
    out = []
    multi = 0
    for (split, key, ep), rs in groups.items():
        if len(rs) > 1:
            multi += 1
        w = [r.n_tokens or 1 for r in rs]
        loss = sum(r.loss * wi for r, wi in zip(rs, w, strict=True)) / sum(w)
        last = max(rs, key=lambda r: (r.step or 0, r.line))
        out.append(
            LossRow(
                key=key,
                epoch=ep,
                loss=loss,
                step=last.step,
                checkpoint=None,
                split=split,
                n_tokens=sum(r.n_tokens or 0 for r in rs) or None,
                line=last.line,
                content_key=last.content_key,
            )
        )
    issue = None
    if multi:
        issue = Issue(
            "recorded_multiple_per_epoch",
            multi,
            f"recorded losses: {multi} (key, epoch) pair(s) were trained on more than once in a pass "
            "(copies of a duplicate); their losses were averaged",
        )
    return out, issue


def validate_rows(rows: Iterable[LossRow], path: str, bad: list[str], raw: int) -> LossTable:
    """Deduplicate (split, key, epoch) keeping the last row, and record every finding."""
    rows = list(rows)
    notes: list[Issue] = []
    if is_recorded(rows):
        rows, note = bin_recorded(rows)
        notes.append(
            Issue(
                "recorded_losses",
                len(rows),
                "losses recorded during training: epoch = completed passes when the sample was "
                "trained on (floor of the fractional epoch)",
            )
        )
        if note:
            notes.append(note)
    last: dict[tuple[str, str, float], LossRow] = {}
    dup_examples: list[str] = []
    dups = conflicting = 0
    for r in rows:
        k = (r.split, r.key, r.epoch)
        prev = last.get(k)
        if prev is not None:
            dups += 1
            if not math.isclose(prev.loss, r.loss, rel_tol=1e-6, abs_tol=1e-9):
                conflicting += 1
            if len(dup_examples) < MAX_EXAMPLES:
                dup_examples.append(
                    f"key={r.key} epoch={r.epoch:g}: lines {prev.line} and {r.line}"
                    f" (loss {prev.loss:.4g} vs {r.loss:.4g})"
                )
        last[k] = r
    table = LossTable(
        rows=sorted(last.values(), key=lambda r: (r.split, r.key, r.epoch)), path=path
    )
    table.raw_rows = raw
    table.issues.extend(notes)
    if bad:
        table.issues.append(
            Issue(
                "nonfinite_loss",
                len(bad),
                f"{len(bad)} row(s) with NaN/inf or unusable loss were left out",
                bad[:MAX_EXAMPLES],
            )
        )
    if dups:
        table.issues.append(
            Issue(
                "duplicated_rows",
                dups,
                f"{dups} row(s) repeat a (key, epoch) - typical of a resumed run that re-scored or "
                f"re-logged; the last row was kept ({conflicting} with a different loss)",
                dup_examples,
            )
        )
    for split in SPLITS:
        epochs = table.epochs(split)
        by_key = table.by_key(split)
        missing = {k: [e for e in epochs if e not in v] for k, v in by_key.items()}
        missing = {k: v for k, v in missing.items() if v}
        if missing:
            ex = [
                f"key={k} missing epoch(s) {', '.join(f'{e:g}' for e in v)}"
                for k, v in sorted(missing.items())[:MAX_EXAMPLES]
            ]
            table.issues.append(
                Issue(
                    "missing_epochs" if split == "train" else "heldout_missing_epochs",
                    len(missing),
                    f"{len(missing)} {split} key(s) lack a loss at some epoch; per-epoch curves use "
                    "the keys measured at that epoch, drops only keys measured at both ends",
                    ex,
                )
            )
    return table


def read_losses(path: str | Path, *, split: str | None = None) -> LossTable:
    """Read and validate a per-sample losses file (see the module docstring for the schema).

    `split` forces every row's split (a --heldout losses file is read with split="heldout").
    Raises InputError for a missing or unparseable file or rows that break the schema; NaN/inf,
    repeated rows and missing epochs are counted in `issues` instead, so a partial file still
    gives a partial report.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: losses file not found (write one with `dedup-audit losses`)")
    rows: list[LossRow] = []
    bad: list[str] = []
    raw = 0
    for n, obj in _iter_rows(p):
        raw += 1
        parsed = _parse(p, n, obj, split)
        if isinstance(parsed, str):
            bad.append(parsed)
        else:
            rows.append(parsed)
    if raw == 0:
        raise InputError(f"{p}: losses file is empty")
    return validate_rows(rows, str(p), bad, raw)


def merge(tables: Iterable[LossTable]) -> LossTable:
    """One table from several (e.g. --losses plus a --heldout losses file)."""
    tables = list(tables)
    rows = [r for t in tables for r in t.rows]
    out = validate_rows(
        rows, " + ".join(t.path for t in tables), [], sum(t.raw_rows for t in tables)
    )
    out.issues = [i for t in tables for i in t.issues] + out.issues
    return out


@dataclass
class JoinResult:
    """How loss keys map onto dataset records (indices), and what did not join.

    `mismatched` are loss keys whose record id exists in the data but names a record with other
    content than the loss row's content_key (the file was reordered or edited since scoring):
    they are joined by content instead. `conflicting` are such keys whose content is nowhere in
    the data: no record can be trusted to be theirs."""

    key_to_records: dict[str, tuple[int, ...]]
    unmatched: list[str]
    matched_by: str  # "content_key" | "id" | "mixed" | "none"
    by_content: int = 0
    by_id: int = 0
    id_only: int = 0  # joined by id with no content key to check it against
    mismatched: list[str] = field(default_factory=list)
    conflicting: list[str] = field(default_factory=list)

    def issue(self, total_keys: int) -> Issue | None:
        if not self.unmatched:
            return None
        return Issue(
            "unjoined_keys",
            len(self.unmatched),
            f"{len(self.unmatched)} of {total_keys} loss key(s) match no dataset record id or "
            "content hash; they are left out of the per-group analysis (wrong --data, or losses "
            "scored on another version of the file?)",
            sorted(self.unmatched)[:MAX_EXAMPLES],
        )

    def mismatch_issue(self, total_keys: int) -> Issue | None:
        if not self.mismatched:
            return None
        return Issue(
            "ids_disagree_with_content",
            len(self.mismatched),
            f"{len(self.mismatched)} of {total_keys} loss key(s) name a record id whose content "
            "differs from the content they were scored on (the data file was reordered or edited "
            "since `dedup-audit losses`); they were joined by content, not by id",
            sorted(self.mismatched)[:MAX_EXAMPLES],
        )


def join_keys(
    keys: Iterable[str],
    ids: Mapping[str, int],
    hashes: Mapping[str, tuple[int, ...]],
    content_keys: Mapping[str, str] | None = None,
) -> JoinResult:
    """Map loss keys to record indices: by content where the row says its content (the key is a
    content hash, or the row carries content_key), checked against the record id when both exist;
    by record id only for rows that carry no content key.

    Why content first: a loss row's id is a row number ("train.json:12"), which a reordered or
    edited file silently points at another sample; its content_key cannot."""
    content_keys = content_keys or {}
    record_hash = {i: h for h, idxs in hashes.items() for i in idxs}
    out = JoinResult({}, [], "none")
    for key in keys:
        content = key if key in hashes else content_keys.get(key)
        idx = ids.get(key)
        if content is None:
            if idx is None:
                out.unmatched.append(key)
            else:
                out.key_to_records[key] = (idx,)
                out.by_id += 1
                out.id_only += 1
            continue
        if content in hashes:
            if idx is not None and record_hash.get(idx) == content:
                out.key_to_records[key] = (idx,)  # id and content agree
            else:
                if idx is not None:
                    out.mismatched.append(key)
                out.key_to_records[key] = hashes[content]
            out.by_content += 1
        elif idx is not None:
            out.conflicting.append(key)  # the id exists, the scored content does not
        else:
            out.unmatched.append(key)
    if out.by_content and out.id_only:
        out.matched_by = "mixed"
    elif out.by_content:
        out.matched_by = "content_key"
    elif out.by_id:
        out.matched_by = "id"
    return out


def read_key_list(path: str | Path) -> list[str]:
    """Keys from a text file (one per line), a JSON list, or a JSONL of objects with 'key'/'id'."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: held-out file not found")
    text = p.read_text(encoding="utf-8")
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(f"{p}: not a valid JSON list of keys ({exc.msg})") from exc
        return [str(x.get("key", x.get("id")) if isinstance(x, dict) else x) for x in data]
    keys = []
    for line in stripped.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            obj = json.loads(line)
            keys.append(str(obj.get("key", obj.get("id"))))
        else:
            keys.append(line)
    return keys


def looks_like_losses(path: str | Path) -> bool:
    """True when a --heldout file is a losses table (has loss columns) rather than a key list."""
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq", ".csv"):
        return True
    try:
        with p.open("r", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    obj = json.loads(line) if line.lstrip().startswith("{") else None
                    return isinstance(obj, dict) and ("loss" in obj or "loss_sum" in obj)
    except (OSError, json.JSONDecodeError):
        return False
    return False
