"""The version of tokenfix (read by the build, written in every audit row and JSON envelope)."""

__version__ = "0.1.0"
