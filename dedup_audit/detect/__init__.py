"""Detectors: each takes the texts of one view and returns scored `Pair`s (views in, pairs out).

Detectors never see files or the whole config; clusters are built from their pairs afterwards.
"""
