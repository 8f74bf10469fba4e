"""Property-based checks of the decision invariants on generated datasets with planted duplicates."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dedup_audit import ScanConfig
from dedup_audit.config import KeepPolicy, MinHashConfig
from dedup_audit.pipeline import scan
from dedup_audit.records import Dataset, Record, Sample, Turn

WORDS = [
    "data",
    "model",
    "loss",
    "epoch",
    "token",
    "prompt",
    "answer",
    "train",
    "eval",
    "copy",
    "学习",
    "数据",
    "模型",
]

texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join)
rows = st.lists(st.tuples(texts, texts), min_size=1, max_size=40)


def _dataset(pairs: list[tuple[str, str]], copies: list[int]) -> Dataset:
    expanded = [pairs[i % len(pairs)] for i in copies] + pairs
    records = [
        Record(
            i,
            f"gen.json:{i}",
            {"instruction": p, "output": r},
            Sample((Turn("user", p), Turn("assistant", r))),
            "gen.json",
        )
        for i, (p, r) in enumerate(expanded)
    ]
    return Dataset(records, "alpaca", "json", ("gen.json",))


@settings(max_examples=60, deadline=None)
@given(
    pairs=rows,
    copies=st.lists(st.integers(min_value=0, max_value=39), max_size=20),
    policy=st.sampled_from(["first", "longest", "shortest", "random"]),
    threshold=st.sampled_from([0.5, 0.8, 1.0]),
    remove_conflicting=st.booleans(),
    cluster=st.sampled_from(["components", "star"]),
)
def test_kept_plus_removed_is_the_input(
    pairs: list[tuple[str, str]],
    copies: list[int],
    policy: str,
    threshold: float,
    remove_conflicting: bool,
    cluster: str,
) -> None:
    ds = _dataset(pairs, copies)
    cfg = ScanConfig(
        keep=KeepPolicy.parse(policy),
        minhash=MinHashConfig(threshold=threshold),
        remove_conflicting=remove_conflicting,
        seed=5,
        cluster=cluster,
    )
    result = scan(ds, cfg)
    n = len(ds.records)
    assert [d.index for d in result.decisions] == list(range(n))
    kept = set(result.kept_indices)
    removed = {d.index for d in result.removed}
    assert kept | removed == set(range(n)) and not kept & removed
    clusters = {c.id: c for c in result.clusters}
    for d in result.removed:
        assert d.kept_twin is not None
        # the twin survives dedup; only --remove-conflicting may remove it afterwards
        twin = result.decisions[d.kept_twin]
        assert twin.keep or (remove_conflicting and twin.reason == "conflicting:prompt")
        assert d.index in clusters[d.cluster_id].members  # type: ignore[index]
        assert d.kept_twin in clusters[d.cluster_id].members  # type: ignore[index]
        assert d.score is not None and (d.method == "exact" or d.score >= threshold)
        if cluster == "star" and d.kind != "conflicting":
            # no chaining: the evidence is a direct link to the kept twin itself
            assert d.via is None
            same = ds.records[d.index].sample == ds.records[d.kept_twin].sample
            assert same or d.method != "exact"
    # exact copies never survive twice in the dedup view
    survivors = [ds.records[i].sample for i in kept]
    assert len(survivors) == len(set(survivors))
    # determinism: the same input and options give the same decisions
    assert scan(ds, cfg).decisions == result.decisions
