"""`tokenfix doctor` (docs/doctor.md): `run` runs every check, `report` holds the plain data (a
check, the report), and each other module is one family of checks or probes.

Nothing is imported here, so that a write run asking `tokenfix.health.mint` its one catalog
question does not load every check of the doctor.
"""
