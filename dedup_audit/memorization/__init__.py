"""Memorization: the loss staircase in trainer logs, per-sample losses (scorer, recorder) and
their analysis against the scan's duplicate clusters."""
