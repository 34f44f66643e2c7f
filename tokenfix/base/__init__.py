"""What every layer shares: errors and exit codes, typed records, signals, the on-disk spool, SQL
identifiers, wording helpers, the shipped SQL files and the version. Imports nothing above it."""
