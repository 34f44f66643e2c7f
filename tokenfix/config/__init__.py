"""Configuration: the settings and where each value came from, tool durations, and the redaction
of connection strings (docs/configuration.md)."""
