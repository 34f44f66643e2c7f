"""A throwaway PostgreSQL and a generated sample, for `tokenfix demo` and the test suite."""
