"""The MinHash-LSH rules every part of the scan shares: the banding (bands x rows for a threshold),
the S-curve it implies, and the score floor down to which verified candidates are kept.

The engine (dedup_audit.engine) applies them; `calibrate` shows them; the saved scan states the
floor. LSH only proposes candidates; a pair counts when the exact Jaccard of its shingle sets
reaches the threshold.
"""

from __future__ import annotations

MIN_RECALL_AT_THRESHOLD = 0.98
SCORE_MARGIN = 0.1
"""Verified candidates are kept down to this far below the threshold: enough to re-threshold
upwards exactly and to show borderline pairs, while the mass of weak LSH candidates (templated
data proposes millions) is counted but not kept."""


def score_floor(threshold: float, lowest: float = 0.0) -> float:
    """The lowest score a scan keeps: SCORE_MARGIN below the threshold, clipped to the score's
    range (Jaccard >= 0; pass lowest=-1.0 for cosine). The one floor rule: the engine, the
    embedding neighbours, the saved pair store and `rethreshold` all use it."""
    return max(lowest, threshold - SCORE_MARGIN)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """P(a pair with this Jaccard becomes an LSH candidate) = 1 - (1 - s^r)^b: the S-curve."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def lsh_bands(
    threshold: float, num_perm: int, min_recall: float = MIN_RECALL_AT_THRESHOLD
) -> tuple[int, int]:
    """(bands, rows) such that a pair exactly at the threshold is a candidate with probability
    >= min_recall, with as many rows per band as allows (fewest false candidates to verify).

    datasketch's default optimises equal false-positive/false-negative weights, which catches a
    pair at Jaccard 0.8 only ~40% of the time at threshold 0.8 and 128 permutations. Every
    candidate is verified by exact Jaccard here, so false candidates only cost time while missed
    pairs cost recall: the curve is tuned for recall.
    """
    for rows in range(num_perm // 2, 0, -1):  # datasketch needs at least 2 bands
        bands = num_perm // rows
        if candidate_probability(threshold, bands, rows) >= min_recall:
            return bands, rows
    return num_perm, 1
