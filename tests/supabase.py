"""A Supabase-shaped database: the Data API roles, auth.uid(), and the usual grants."""

from __future__ import annotations

from typing import Any

import psycopg

API_ROLES = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
END $$;
"""

# As on Supabase: auth.uid() reads the JWT subject the API sets per request, and the API
# roles get every privilege on public tables; row-level security is what protects the rows.
SUPABASE_SHAPE = """
CREATE SCHEMA IF NOT EXISTS auth;
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT nullif(coalesce(current_setting('request.jwt.claim.sub', true),
                           current_setting('request.jwt.claims', true)::jsonb ->> 'sub'), '')::uuid
$$;
GRANT USAGE ON SCHEMA auth, public TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION auth.uid() TO anon, authenticated, service_role;
GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated, service_role;
"""


def create_api_roles(conn: psycopg.Connection[Any]) -> None:
    """Roles are cluster-wide: created once, idempotently, for the whole session."""
    conn.execute(API_ROLES)


def make_supabase_like(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SUPABASE_SHAPE)
