"""`doctor` and the trust-boundary checks (docs/commands.md, docs/doctor.md): `tokenfix.health.run`
runs them.

Nothing is imported here, so that a write run asking `tokenfix.health.mint` its one catalog
question does not load every check of the doctor.
"""
