"""The two reports, laid out alike: `scan` (duplication) and `memorization` (the loss staircase).

Each has `report_json` (the versioned report.json, the source of truth), `html` (the page that
renders it) and a terminal summary; the scan side also saves and reloads whole scans (`saved`)
and calibrates thresholds from them (`calibrate`)."""
