"""The SPEC §8 benchmark: `python -m bench --help`."""
