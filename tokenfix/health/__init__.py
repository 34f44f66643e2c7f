"""`doctor` and the trust-boundary checks (SPEC §4, §11): `tokenfix.health.run` runs them.

Nothing is imported here, so that a write run asking `tokenfix.health.mint` its one catalog
question does not load every check of the doctor.
"""
