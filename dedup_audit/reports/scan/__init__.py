"""The scan report: report.json + pairs.parquet (a saved scan), report.md, report.html."""
