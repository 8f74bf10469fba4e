"""Options of scan and clean: how to read the data, and how to compare it (the options every
command shares are in `commands.common`).

One option maps to one config field; `scan_config_from` builds the validated ScanConfig.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dedup_audit.commands.common import dataset_info_options
from dedup_audit.config import (
    EngineConfig,
    KeepPolicy,
    MinHashConfig,
    NormalizeConfig,
    ScanConfig,
    SemanticConfig,
)
from dedup_audit.errors import ConfigError
from dedup_audit.records import VIEWS

# every default comes from the config's own fields: one source for each
MINHASH = MinHashConfig()
SEMANTIC = SemanticConfig()
ENGINE = EngineConfig()

FORMATS = ("auto", "alpaca", "sharegpt", "messages", "text", "pairwise")


def _apply(options: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def decorator(f: Any) -> Any:
        for option in reversed(options):
            f = option(f)
        return f

    return decorator


def parse_columns(values: tuple[str, ...], flag: str = "--column") -> dict[str, str]:
    columns: dict[str, str] = {}
    for value in values:
        role, sep, key = value.partition("=")
        if not sep or not role or not key:
            raise ConfigError(f"{flag} expects ROLE=KEY (e.g. prompt=question), got {value!r}")
        columns[role] = key
    return columns


input_options = _apply(
    [
        click.argument("data", required=False, type=click.Path(path_type=Path)),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(FORMATS),
            default="auto",
            show_default=True,
            help="Dataset format; auto-detected from the rows unless given.",
        ),
        dataset_info_options("DATA"),
        click.option(
            "--id-column",
            help="Column holding a stable record id (default: an `id` column when it is "
            "unique, else FILE:N, N = the row's position counted from 0).",
        ),
        click.option(
            "--column",
            "columns",
            multiple=True,
            metavar="ROLE=KEY",
            help="Map a LLaMA-Factory column role to a key, e.g. --column prompt=question.",
        ),
    ]
)

scan_options = _apply(
    [
        click.option(
            "--view",
            "dedup_view",
            type=click.Choice(VIEWS),
            default="full",
            show_default=True,
            help="View whose duplicate clusters `clean` removes.",
        ),
        click.option(
            "--views",
            default=",".join(VIEWS),
            show_default=True,
            help="Views to scan (comma separated): full, prompt, response, first_turn.",
        ),
        click.option("--no-exact", is_flag=True, help="Skip exact-hash detection."),
        click.option("--no-near", is_flag=True, help="Skip MinHash-LSH near-duplicate detection."),
        click.option(
            "--threshold",
            type=float,
            default=MINHASH.threshold,
            show_default=True,
            help="Near duplicates: minimum exact Jaccard of shingles.",
        ),
        click.option(
            "--num-perm",
            type=int,
            default=MINHASH.num_perm,
            show_default=True,
            help="MinHash permutations.",
        ),
        click.option(
            "--ngram", type=int, default=MINHASH.ngram, show_default=True, help="Word n-gram size."
        ),
        click.option(
            "--char-ngram",
            type=int,
            default=MINHASH.char_ngram,
            show_default=True,
            help="Character n-gram size (CJK text).",
        ),
        click.option(
            "--shingle",
            type=click.Choice(["auto", "word", "char"]),
            default="auto",
            show_default=True,
            help="Shingles: auto picks char n-grams for CJK text.",
        ),
        click.option(
            "--threads",
            type=int,
            default=None,
            help="Cores for the lexical engine (default: all). Results do not depend on it.",
        ),
        click.option(
            "--memory",
            "memory_mb",
            type=int,
            default=ENGINE.memory_mb,
            show_default=True,
            metavar="MB",
            help="Memory budget for sketches; past it they spill to --work-dir.",
        ),
        click.option(
            "--save-index",
            type=click.Path(path_type=Path, file_okay=False),
            help="Also write this corpus's index (hashes, signatures, band tables) to a folder.",
        ),
        click.option(
            "--index",
            "index_dir",
            type=click.Path(path_type=Path, file_okay=False),
            help="Check DATA against an older corpus's --save-index folder, no recompute.",
        ),
        click.option(
            "--work-dir",
            type=click.Path(path_type=Path, file_okay=False),
            help="Folder for spilled sketches (default: the system temp folder); with "
            "--engine ray, the stage checkpoints a rerun resumes from (may be s3:// or gs://).",
        ),
        click.option(
            "--engine",
            "engine_kind",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
            help="Exact and near duplicates on this machine, or on Ray Data (a local Ray, or "
            "--ray-address); needs pip install 'dedup-audit[ray]'.",
        ),
        click.option(
            "--ray-address",
            metavar="ADDRESS",
            help="An existing Ray cluster for --engine ray (ray://HOST:10001 or HOST:6379; "
            "default: $RAY_ADDRESS, else Ray starts on this machine).",
        ),
        click.option(
            "--driver-edges",
            type=int,
            default=100_000_000,
            show_default=True,
            help="--engine ray: connected components on the driver (scipy) up to this many "
            "edges, distributed (large-star/small-star) above.",
        ),
        click.option("--case-sensitive", is_flag=True, help="Do not lowercase before comparing."),
        click.option("--no-nfkc", is_flag=True, help="Do not apply Unicode NFKC before comparing."),
        click.option("--keep-whitespace", is_flag=True, help="Do not collapse whitespace."),
        click.option(
            "--strip-punctuation", is_flag=True, help="Drop punctuation before comparing."
        ),
        click.option(
            "--semantic", is_flag=True, help="Also find paraphrases with sentence embeddings."
        ),
        click.option(
            "--model",
            default=SEMANTIC.model,
            show_default=True,
            help="Embedding model: the packaged default or a local sentence-transformers folder.",
        ),
        click.option(
            "--backend",
            type=click.Choice(["auto", "torch", "onnx", "onnx-int8"]),
            default="auto",
            show_default=True,
            help="Embedding backend (see benchmarks/README.md).",
        ),
        click.option(
            "--device",
            type=click.Choice(["auto", "cpu", "cuda"]),
            default="auto",
            show_default=True,
            help="Where embeddings and FAISS run.",
        ),
        click.option(
            "--semantic-threshold",
            type=float,
            default=SEMANTIC.threshold,
            show_default=True,
            help="Minimum cosine similarity for a semantic duplicate.",
        ),
        click.option(
            "--semantic-views",
            default="",
            help="Views searched for paraphrases over every record (comma separated; default: "
            "the dedup view, plus prompt with --remove-conflicting). Other views embed only "
            "the links they must confirm.",
        ),
        click.option(
            "--k",
            "knn",
            type=int,
            default=SEMANTIC.k,
            show_default=True,
            help="Neighbours per record.",
        ),
        click.option(
            "--batch-size",
            type=int,
            default=SEMANTIC.batch_size,
            show_default=True,
            help="Embedding batch size.",
        ),
        click.option(
            "--max-seq-length",
            type=int,
            default=SEMANTIC.max_seq_length,
            show_default=True,
            help="Embedding max tokens per text.",
        ),
        click.option(
            "--cache-dir",
            type=click.Path(path_type=Path),
            help="Embedding cache (default ~/.cache/dedup-audit or $DEDUP_AUDIT_CACHE).",
        ),
        click.option(
            "--against",
            multiple=True,
            type=click.Path(path_type=Path, exists=True),
            help="Reference set (eval/benchmark) to check for contamination; repeatable.",
        ),
        click.option(
            "--against-column",
            "against_columns",
            multiple=True,
            metavar="ROLE=KEY",
            help="Column mapping for the --against files, e.g. prompt=question.",
        ),
        click.option(
            "--against-false-flag-rate",
            type=float,
            default=SEMANTIC.against_false_flag_rate,
            show_default=True,
            help="Embedding contamination check: share of clean training texts the cuts "
            "(calibrated on the data's own null distribution) may flag.",
        ),
        click.option(
            "--keep-by",
            default="first",
            show_default=True,
            help="Which duplicate survives: first, longest, shortest, random, or COLUMN:max|min.",
        ),
        click.option(
            "--seed", type=int, default=0, show_default=True, help="Seed for --keep-by random."
        ),
        click.option(
            "--cluster",
            type=click.Choice(["auto", "components", "star"]),
            default="auto",
            show_default=True,
            help="components: one survivor per connected cluster; star: remove only records "
            "directly similar to a kept one (no chaining); auto: star for clusters with "
            "semantic links, components otherwise.",
        ),
        click.option(
            "--remove-conflicting",
            is_flag=True,
            help="Also remove conflicting samples (same prompt, different responses).",
        ),
    ]
)


def scan_config_from(kw: dict[str, Any]) -> ScanConfig:
    """Build the validated ScanConfig from parsed scan options (a missing extra stops here,
    before any work)."""
    if kw["semantic"]:
        from dedup_audit.extras import require

        require("semantic", "--semantic (sentence embeddings)")
    views = tuple(v.strip() for v in kw["views"].split(",") if v.strip())
    return ScanConfig(
        views=views,
        dedup_view=kw["dedup_view"],
        exact=not kw["no_exact"],
        near=not kw["no_near"],
        normalize=NormalizeConfig(
            nfkc=not kw["no_nfkc"],
            lowercase=not kw["case_sensitive"],
            whitespace=not kw["keep_whitespace"],
            punctuation=kw["strip_punctuation"],
        ),
        minhash=MinHashConfig(
            threshold=kw["threshold"],
            num_perm=kw["num_perm"],
            ngram=kw["ngram"],
            char_ngram=kw["char_ngram"],
            shingle=kw["shingle"],
        ),
        semantic=SemanticConfig(
            enabled=kw["semantic"],
            model=kw["model"],
            backend=kw["backend"],
            device=kw["device"],
            threshold=kw["semantic_threshold"],
            k=kw["knn"],
            batch_size=kw["batch_size"],
            max_seq_length=kw["max_seq_length"],
            cache_dir=str(kw["cache_dir"]) if kw["cache_dir"] else None,
            against_false_flag_rate=kw["against_false_flag_rate"],
            search_views=tuple(v.strip() for v in kw["semantic_views"].split(",") if v.strip()),
        ),
        keep=KeepPolicy.parse(kw["keep_by"]),
        remove_conflicting=kw["remove_conflicting"],
        cluster=kw["cluster"],
        seed=kw["seed"],
        against=tuple(str(p) for p in kw["against"]),
    )


def engine_config_from(kw: dict[str, Any]) -> EngineConfig:
    """How the engine runs (threads, memory, spill folder): not part of the scan's config."""
    return EngineConfig(
        threads=kw["threads"],
        memory_mb=kw["memory_mb"],
        work_dir=_work_dir(kw["work_dir"]),
        kind=kw.get("engine_kind", "local"),
        ray_address=kw.get("ray_address"),
        driver_edges=kw.get("driver_edges", 100_000_000),
    )


def _work_dir(path: Path | None) -> str | None:
    """--work-dir as given; an object-storage URI survives click's Path (s3:/b -> s3://b)."""
    if path is None:
        return None
    from dedup_audit.engine.remote import uri_of

    return uri_of(path) or str(path)


def _local_dir(path: str | None) -> str | None:
    return path if path and "://" not in path else None


def run_stages(config: ScanConfig) -> list[tuple[str, str | None]]:
    """The stages a scan/clean with this config runs, for the run's progress and ETA."""
    from dedup_audit.progress import scan_stages

    return scan_stages(config.views, near=config.near, semantic=config.semantic.enabled)


def echo_warnings(report: dict[str, Any]) -> None:
    """A scan's warnings on stderr, whatever the verbosity: -q hides the summary, not these."""
    for warning in report.get("warnings", []):
        click.echo(f"Warning: {warning}", err=True)


def input_paths(kw: dict[str, Any]) -> list[Path]:
    """The files a scan/clean reads, as given (for checking outputs before anything is read)."""
    given = [kw["data"], kw["dataset_info"], *kw["against"]]
    return [Path(p) for p in given if p is not None]


def load_input(kw: dict[str, Any]) -> Any:
    """Load DATA, or the --dataset-info/--dataset entry, with the reading options."""
    from dedup_audit.readers import load_dataset

    data, info, name = kw["data"], kw["dataset_info"], kw["dataset_name"]
    if data is None and info is None:
        raise ConfigError("give a DATA file, or --dataset-info PATH --dataset NAME")
    if data is not None and info is not None:
        raise ConfigError("give either DATA or --dataset-info/--dataset, not both")
    if info is not None and not name:
        raise ConfigError("--dataset-info needs --dataset NAME (an entry of that file)")
    from dedup_audit.engine.remote import fetch, uri_of

    remote = uri_of(data)
    if remote is not None:  # object storage: the workers read it, the driver a local copy
        data = fetch(remote, _local_dir(_work_dir(kw.get("work_dir"))))
    if data is not None and not data.exists():
        raise ConfigError(f"{data}: no such file or folder")
    dataset = load_dataset(
        data if data is not None else info,
        format=kw["fmt"],
        dataset_info=info,
        dataset_name=name,
        id_column=kw["id_column"],
        columns=parse_columns(kw["columns"]) or None,
        progress=not kw.get("quiet", False),
        work_dir=_local_dir(_work_dir(kw.get("work_dir"))),
        lazy=True if remote is not None else None,
    )
    if remote is not None:
        dataset.writer_hints["source_uri"] = remote
    return dataset


def load_references(kw: dict[str, Any]) -> dict[str, Any]:
    """--against files by display name (file name; parent/file when names collide)."""
    from dedup_audit.readers.reference import load_reference

    columns = parse_columns(kw["against_columns"], "--against-column") or None
    refs: dict[str, Any] = {}
    data = kw.get("data")
    for path in kw["against"]:
        if data is not None and Path(data).resolve() == Path(path).resolve():
            raise ConfigError(
                f"--against {path} is the training file itself: every row would match; pass a "
                "separate eval/benchmark file"
            )
        name = path.name if path.name not in refs else f"{path.parent.name}/{path.name}"
        refs[name] = load_reference(path, columns)
    return refs
