"""The trust boundary follows calls and chains (docs/doctor.md): a SECURITY DEFINER function
that writes the balance through a helper, or through a table whose trigger does; a public view
over a private view over the balance table. And doctor, probing and trying its fixes, leaves
every table and catalog exactly as it found them.

As in the other trust-boundary tests, each hole is first proven by attacking as the API role
with PostgREST's settings (rolled back), and has a safe twin.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tests.support.doctoring import Users
from tests.support.doctoring import doctor_checks as doctor
from tests.support.supabase import attack, lock_down_ledger, make_supabase_like

REMAINING = "SELECT vibe_assistant_tokens_remaining FROM user_profiles WHERE user_id = %s"


@pytest.fixture
def users(conn: psycopg.Connection, ledger: Ledger) -> Users:
    make_supabase_like(conn)
    lock_down_ledger(conn)
    conn.execute("ALTER TABLE user_profiles ENABLE ROW LEVEL SECURITY")
    conn.execute(
        "CREATE POLICY own_profile_read ON user_profiles FOR SELECT TO authenticated"
        " USING (auth.uid() = user_id)"
    )
    owner = ledger.profile(ledger.user(), remaining=100)
    other = ledger.profile(ledger.user(), remaining=50)
    ledger.row(owner, 5)
    conn.execute("CREATE SCHEMA private")  # no USAGE for the API roles
    return Users(owner, other)


def call_raises(conn: psycopg.Connection, user: uuid.UUID, call: str) -> bool:
    done = attack(
        conn, "authenticated", user, call, then=REMAINING, then_params=(user,),
        method="POST", path="/rpc/",
    )  # fmt: skip
    return done.error is None and done.after is not None and done.after[0] > 100


# --- 5. definer functions, followed through what they call ---

HELPER = """
CREATE FUNCTION private.add_tokens(who uuid, amount integer) RETURNS void LANGUAGE sql AS $$
    UPDATE public.user_profiles
    SET vibe_assistant_tokens_remaining = vibe_assistant_tokens_remaining + amount
    WHERE user_id = who
$$
"""
REDEEM = """
CREATE FUNCTION public.redeem(code text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
    PERFORM private.add_tokens(auth.uid(), length(code) * 100);
END $$
"""


def test_a_definer_function_writing_through_a_helper_is_named(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(HELPER)
    conn.execute("REVOKE EXECUTE ON FUNCTION private.add_tokens(uuid, integer) FROM PUBLIC")
    conn.execute(REDEEM)
    assert call_raises(conn, users.owner, "SELECT public.redeem('FREE-TOKENS')")
    check = doctor(cli)["security_definer_callable"]
    assert check["status"] == "warn"
    assert (
        "redeem(text) writes user_profiles (through private.add_tokens(uuid,integer))"
        in (check["message"])
    )
    assert (
        "REVOKE EXECUTE ON FUNCTION redeem(text) FROM PUBLIC, anon, authenticated" in (check["fix"])
    )


def test_a_definer_function_revoked_from_the_api_roles_is_not_named(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(HELPER)
    conn.execute(REDEEM)
    conn.execute("REVOKE EXECUTE ON FUNCTION public.redeem(text) FROM PUBLIC, anon, authenticated")
    conn.execute("REVOKE EXECUTE ON FUNCTION private.add_tokens(uuid, integer) FROM PUBLIC")
    assert not call_raises(conn, users.owner, "SELECT public.redeem('FREE-TOKENS')")
    assert doctor(cli)["security_definer_callable"]["status"] == "ok"


def test_a_definer_function_writing_a_table_whose_trigger_credits_is_named(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute("CREATE TABLE private.purchases (user_id uuid, tokens integer)")
    conn.execute(
        "CREATE FUNCTION private.credit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " UPDATE public.user_profiles SET vibe_assistant_tokens_remaining ="
        " vibe_assistant_tokens_remaining + NEW.tokens WHERE user_id = NEW.user_id;"
        " RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER credit AFTER INSERT ON private.purchases"
        " FOR EACH ROW EXECUTE FUNCTION private.credit()"
    )
    conn.execute(
        "CREATE FUNCTION public.record_purchase(tokens integer) RETURNS void LANGUAGE sql"
        " SECURITY DEFINER SET search_path = '' AS $$"
        " INSERT INTO private.purchases (user_id, tokens) VALUES (auth.uid(), tokens) $$"
    )
    assert call_raises(conn, users.owner, "SELECT public.record_purchase(1000)")
    check = doctor(cli)["security_definer_callable"]
    assert check["status"] == "warn"
    assert (
        "record_purchase(integer) writes user_profiles (through private.credit())"
        in (check["message"])
    )


# --- 5. views, followed down their chain ---

INNER = (
    "CREATE VIEW private.balances AS SELECT user_id, vibe_assistant_tokens_remaining,"
    " vibe_assistant_tokens_used FROM public.user_profiles"
)


def _through_public_view(conn: psycopg.Connection, users: Users) -> bool:
    done = attack(
        conn, "authenticated", users.owner,
        "UPDATE public.balances SET vibe_assistant_tokens_remaining = 1000000 WHERE user_id = %s",
        (users.other,), then=REMAINING, then_params=(users.other,), path="/balances",
    )  # fmt: skip
    return done.after == (1_000_000,)


def test_a_public_view_over_a_private_definer_view_is_probed(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(INNER)
    conn.execute("CREATE VIEW public.balances AS SELECT * FROM private.balances")
    # Supabase's default privileges give the API roles everything on the public view.
    assert _through_public_view(conn, users)
    check = doctor(cli)["writable_views"]
    assert check["status"] == "fail"
    assert "view public.balances over user_profiles through private.balances" in (check["message"])
    assert "can raise any user's balance through it" in check["message"]
    assert 'ALTER VIEW "public"."balances" SET (security_invoker = true);' in check["fix"]
    assert 'ALTER VIEW "private"."balances" SET (security_invoker = true);' in check["fix"]
    for statement in check["fix"].split(";")[:2]:
        conn.execute(statement)
    assert not _through_public_view(conn, users)


def test_an_invoker_view_over_a_private_view_the_roles_cannot_use_is_safe(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(INNER)
    conn.execute(
        "CREATE VIEW public.balances WITH (security_invoker = true)"
        " AS SELECT * FROM private.balances"
    )
    assert not _through_public_view(conn, users)
    check = doctor(cli)["writable_views"]
    assert check["status"] == "ok", check


# --- doctor changes nothing: tables, catalogs ---

TABLES = """
SELECT c.oid::regclass::text FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
ORDER BY 1
"""
CATALOGS = """
SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
    SELECT format('%s %s %s %s %s %s', c.oid::regclass, c.relowner, c.relacl, c.relrowsecurity,
                  c.relforcerowsecurity, c.reloptions) AS x
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('public', 'auth', 'private')
    UNION ALL
    SELECT format('%s %s %s %s %s', p.polname, p.polrelid::regclass, p.polcmd, p.polroles,
                  pg_get_expr(p.polqual, p.polrelid))
    FROM pg_policy AS p
    UNION ALL
    SELECT format('%s %s', a.attrelid::regclass, a.attacl) FROM pg_attribute AS a
    WHERE a.attacl IS NOT NULL
    UNION ALL
    SELECT format('%s %s %s', p.oid::regprocedure, p.proowner, p.proacl) FROM pg_proc AS p
    JOIN pg_namespace AS n ON n.oid = p.pronamespace WHERE n.nspname IN ('public', 'private')
) AS everything
"""


def _snapshot(conn: psycopg.Connection) -> dict[str, tuple[object, ...]]:
    found: dict[str, tuple[object, ...]] = {}
    for (table,) in conn.execute(TABLES).fetchall():
        row = conn.execute(
            f"SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} AS t"
        ).fetchone()
        assert row is not None
        found[table] = tuple(row)
    found["catalogs"] = tuple(conn.execute(CATALOGS).fetchone() or ())
    return found


def test_doctor_probing_and_trying_fixes_changes_no_table_nor_catalog(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # Every path open, so that every probe writes and every fix is tried: an owned table,
    # insert and delete policies, a writable ledger, a view chain, a trigger writing elsewhere.
    conn.execute("ALTER TABLE user_profiles OWNER TO authenticated")
    conn.execute(
        "CREATE POLICY own_insert ON user_profiles FOR INSERT TO anon, authenticated"
        " WITH CHECK (true)"
    )
    conn.execute("CREATE POLICY anon_update ON user_profiles FOR UPDATE TO anon USING (true)")
    conn.execute("ALTER TABLE token_usage DISABLE ROW LEVEL SECURITY")
    conn.execute("CREATE TABLE public.audit_log (what text, at timestamptz DEFAULT now())")
    conn.execute(
        "CREATE FUNCTION public.log_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " INSERT INTO public.audit_log (what) VALUES (TG_TABLE_NAME || ' ' || TG_OP);"
        " RETURN NULL; END $$"
    )
    for table in ("user_profiles", "token_usage", "ai_action_token_overrides"):
        conn.execute(
            f"CREATE TRIGGER log_write AFTER INSERT OR UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION public.log_write()"
        )
    conn.execute(INNER)
    conn.execute("CREATE VIEW public.balances AS SELECT * FROM private.balances")
    conn.execute(HELPER)
    conn.execute(REDEEM)
    before = _snapshot(conn)
    checks = doctor(cli)
    assert checks["api_role_authenticated"]["status"] == "fail"
    assert checks["api_role_authenticated"]["fix"].startswith("ALTER TABLE")
    assert checks["api_role_anon"]["status"] == "fail"
    assert checks["ledger_writes"]["status"] == "fail"
    assert checks["writable_views"]["status"] == "fail"
    assert _snapshot(conn) == before
    assert conn.execute("SELECT to_regnamespace('tokenfix')").fetchone() == (None,)


def test_a_definer_view_that_accepts_only_inserts_is_probed_with_a_post(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(
        "CREATE VIEW public.signup AS SELECT user_id, vibe_assistant_tokens_remaining,"
        " vibe_assistant_tokens_used FROM public.user_profiles"
    )
    conn.execute("REVOKE UPDATE, DELETE ON public.signup FROM anon, authenticated")
    newcomer = uuid.uuid4()
    posted = attack(
        conn, "authenticated", newcomer,
        "INSERT INTO public.signup VALUES (%s, 1000000, 0)", (newcomer,),
        then=REMAINING, then_params=(newcomer,), method="POST", path="/signup",
    )  # fmt: skip
    assert posted.after == (1_000_000,)
    check = doctor(cli)["writable_views"]
    assert check["status"] == "fail"
    assert "can POST a balance row of 1,000,000 through it" in check["message"]
    conn.execute("REVOKE INSERT ON public.signup FROM anon, authenticated")
    assert doctor(cli)["writable_views"]["status"] == "ok"
