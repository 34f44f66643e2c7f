"""A reconcile run: the plan (one set-based pass), the dry run, the write path with its batches
and compare-and-set (docs/safety.md), and the exit policy for monitors."""
