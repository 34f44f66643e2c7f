"""Connections to PostgreSQL: URLs as apps write them, libpq services, timeouts set per
transaction, pooler and standby detection."""
