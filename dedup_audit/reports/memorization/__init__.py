"""The memorization report: report.json (source of truth), plots, HTML page, terminal summary."""
