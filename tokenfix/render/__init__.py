"""Rendering of plain results: rich layouts for people (`console`, `diagnosis`, `reconcile`,
`runs`, `doctor`), and for machines JSON, CSV and the Prometheus file (`json`, `csv`, `metrics`:
no rich on those paths, which cron takes).

stdout carries the result only; messages and progress go to stderr.
"""
