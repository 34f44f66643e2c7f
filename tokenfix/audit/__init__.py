"""The audit schema the tool owns (docs/safety.md): its layouts, the runs and changes, the writer
lease, history lookups and revert."""
