"""The balance model compiled to SQL for one mapping on one database (docs/balance-model.md):
the statements, the compiled expressions, prices, catalogs, owner keys and our own row-level
security."""
