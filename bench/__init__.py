"""The docs/performance.md benchmark: `python -m bench --help`."""
