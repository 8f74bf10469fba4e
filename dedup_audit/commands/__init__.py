"""One module per CLI command; `dedup_audit.cli` imports them lazily."""
