"""Semantic duplicates: paraphrases found by embedding cosine similarity (kNN over FAISS).

n-gram methods miss "Who are you?" / "Tell me who you are"; embeddings catch them. Each text is
embedded once (cached on disk by the encoder), every text's k nearest neighbours are looked up,
and a neighbour counts as an edge when its cosine reaches the threshold.

Neighbours down to `threshold - BORDERLINE_MARGIN` (0.1, the floor report.json states as
`scored_pairs_floor`) are returned too (the pipeline applies the threshold), so `calibrate` can
list borderline pairs and a saved scan can be re-thresholded lower without recomputing.

The full view is embedded without its role markers (`embedding_text`): "<assistant>" on every
record is shared text that pulls unrelated conversations together (on MRPC it alone raised the
pairs at cosine >= 0.9 from 602 to 688).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dedup_audit.detect.minhash import SCORE_MARGIN, score_floor
from dedup_audit.records import Pair, Sample
from dedup_audit.views import view_text

if TYPE_CHECKING:
    from dedup_audit.config import SemanticConfig
    from dedup_audit.encoders import Encoder

BORDERLINE_MARGIN = SCORE_MARGIN


def embedding_text(sample: Sample, view: str) -> str:
    """The text a view is embedded as: the view's text, except that the full view joins the
    system prompt, tool schema and turns without role markers."""
    if view != "full":
        return view_text(sample, view)
    parts = [sample.system] if sample.system else []
    if sample.tools:
        parts.append(sample.tools)
    parts += [t.text for t in sample.turns]
    return "\n".join(parts)


def find_semantic(
    texts: Sequence[str],
    view: str,
    cfg: SemanticConfig,
    *,
    encoder: Encoder | None = None,
    progress: bool = False,
    floor: float | None = None,
) -> list[Pair]:
    """Pairs (a < b, method "embedding", score = cosine rounded to 6 places) between texts of one
    view that are among each other's `cfg.k` nearest neighbours with cosine >= `floor`
    (default: `cfg.threshold - BORDERLINE_MARGIN`). Empty texts are skipped. Sorted by (a, b).
    """
    from dedup_audit.detect.faiss_index import knn_self

    keep = [i for i, t in enumerate(texts) if t.strip()]
    if len(keep) < 2:
        return []
    if encoder is None:
        from dedup_audit.encoders import get_encoder

        encoder = get_encoder(cfg)
    emb = encoder.encode([texts[i] for i in keep], batch_size=cfg.batch_size, progress=progress)
    lo = score_floor(cfg.threshold, -1.0) if floor is None else floor
    pairs = [
        Pair(keep[i], keep[j], round(min(1.0, s), 6), "embedding", view)
        for i, j, s in knn_self(emb, cfg.k, lo)
    ]
    return sorted(pairs, key=lambda p: (p.a, p.b))
