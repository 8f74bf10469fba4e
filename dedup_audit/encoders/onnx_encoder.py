"""The onnx / onnx-int8 backends: the model exported locally to one ONNX graph, verified against
torch before it is kept, and run by onnxruntime on CPU.

Export and encoder share this module because the encoder's inputs (tokenizer folder, pad id in
meta.json, the graph's input names) are exactly what the export writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dedup_audit.encoders import normalize_rows
from dedup_audit.encoders.artifacts import artifact_dir, build_once
from dedup_audit.encoders.model_source import ModelSource, ensure_offline, pooling_mode
from dedup_audit.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Probe texts used to check that an exported ONNX graph reproduces the torch model.
_PROBES = (
    "Who are you?",
    "Tell me who you are and who built you.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many in May.",
    "x",
    "你好，请介绍一下你自己",
)
_MIN_EXPORT_COSINE = 0.999


def _export_onnx(source: ModelSource, out: Path) -> None:
    """Export Transformer + pooling + L2 norm as one ONNX graph, then check it against torch.

    The attention mask is built here (additive, eager attention) rather than by transformers'
    mask helpers, which do not survive tracing: a straight `torch.onnx.export` of the model
    produced embeddings only 0.89 cosine-similar to torch.
    """
    ensure_offline()
    import numpy as np
    import torch
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


def _quantized(folder: Path) -> Path:
    """model.int8.onnx beside the fp32 graph, built on first use of the int8 backend only (the
    quantization costs seconds that the default fp32 backend never needs), written to a temp
    file and renamed into place."""
    final = folder / "model.int8.onnx"
    if final.is_file():
        return final
    import logging
    import os
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    fd, tmp = tempfile.mkstemp(prefix=".model.int8.", suffix=".onnx", dir=folder)
    os.close(fd)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime logs a pre-processing advice on the root logger
    try:
        quantize_dynamic(
            str(folder / "model.onnx"), tmp, weight_type=QuantType.QInt8, per_channel=True
        )
        os.replace(tmp, final)
    finally:
        root.setLevel(level)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return final


def onnx_artifacts(source: ModelSource, cache_dir: Path) -> Path:
    """The folder with model.onnx and the tokenizer, exported on first use (model.int8.onnx is
    added by the int8 backend on its first use)."""
    final = artifact_dir(cache_dir, source, "onnx")
    if not (final / "meta.json").is_file():
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(
                "the onnx backends need onnxruntime: pip install onnxruntime onnx "
                "(or use --backend torch)"
            ) from exc
    return build_once(final, lambda tmp: _export_onnx(source, tmp))


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
            file = _quantized(folder) if self.quantized else folder / "model.onnx"
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
        return normalize_rows(out)
