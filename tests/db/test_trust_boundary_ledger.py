"""docs/doctor.md, the source of truth: can an API role mint a grant, erase a charge or set a price in
the tables reconcile computes balances from? And the write run's cheap catalog look first
(`ledger_mint_risks`), and doctor leaving the database exactly as it found it.

As in test_trust_boundary.py, every test first attacks as the role itself (rolled back).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tests.support.doctoring import doctor_checks as doctor
from tests.support.supabase import attack, lock_down_ledger, make_supabase_like, mint_grant
from tokenfix.config.settings import Settings
from tokenfix.health.mint import MintRisk, ledger_mint_risks, mint_warning

CHARGE_ONLY = (
    "CREATE POLICY own_charges_insert ON token_usage FOR INSERT TO authenticated"
    " WITH CHECK (auth.uid() = user_id AND action_type <> ALL (ARRAY['admin_grant', 'admin_deduct']))"
)


@dataclass(frozen=True)
class Users:
    owner: uuid.UUID
    other: uuid.UUID
    charge: int  # a charge row of owner's
    override: int


@pytest.fixture
def users(conn: psycopg.Connection, ledger: Ledger) -> Users:
    """Supabase's grants; profiles closed to updates; the ledger and prices as each test says."""
    make_supabase_like(conn)
    conn.execute("ALTER TABLE user_profiles ENABLE ROW LEVEL SECURITY")
    owner = ledger.profile(ledger.user(), remaining=100)
    other = ledger.profile(ledger.user(), remaining=50)
    charge = ledger.row(owner, 40, action="chat")
    ledger.row(other, 10, action="chat")
    return Users(owner, other, charge, ledger.override("chat", 3))


def test_ledger_rls_off_with_supabase_grants_fails_for_minting_grants(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    assert mint_grant(conn, "authenticated", users.owner, users.owner).worked
    assert mint_grant(conn, "anon", None, users.other).worked
    checks = doctor(cli)
    check = checks["ledger_writes"]
    assert check["status"] == "fail"
    assert "any signed-in user (authenticated) can mint grants" in check["message"]
    assert "anyone with the anon key (anon) can mint grants" in check["message"]
    assert "erase charges" in check["message"]
    assert (
        'REVOKE INSERT, UPDATE, DELETE ON "token_usage" FROM PUBLIC, anon, authenticated'
        in (check["fix"])
    )
    reads = checks["ledger_reads"]
    assert (
        reads["status"] == "warn" and "every visitor reads every user's usage" in reads["message"]
    )


def test_an_own_row_insert_policy_fails_when_the_row_may_be_a_grant(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    lock_down_ledger(conn)
    conn.execute(
        "CREATE POLICY own_usage_insert ON token_usage FOR INSERT TO authenticated"
        " WITH CHECK (auth.uid() = user_id)"
    )
    assert mint_grant(conn, "authenticated", users.owner, users.owner).worked
    assert not mint_grant(conn, "authenticated", users.owner, users.other).worked
    check = doctor(cli)["ledger_writes"]
    assert check["status"] == "fail"
    assert "INSERT of a grant row (admin_grant) for itself touched 1 row" in check["message"]
    assert "own_usage_insert" in check["fix"] and "own_charges_insert" in check["fix"]


def test_users_inserting_only_their_own_charge_rows_is_self_reported_usage(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    lock_down_ledger(conn)
    conn.execute(CHARGE_ONLY)
    assert mint_grant(conn, "authenticated", users.owner, users.owner).error == "42501"
    charge = attack(
        conn, "authenticated", users.owner,
        "INSERT INTO token_usage (user_id, action_type, tokens_used, success)"
        " VALUES (%s, 'chat', 1, true)", (users.owner,),
    )  # fmt: skip
    assert charge.worked
    for args in ((), ("--no-probe",)):
        check = doctor(cli, *args)["ledger_writes"]
        assert check["status"] == "warn"
        assert check["message"].startswith("usage is self-reported")


def test_deleting_or_lowering_their_own_charge_rows_erases_charges(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    lock_down_ledger(conn)
    conn.execute(
        "CREATE POLICY own_usage_delete ON token_usage FOR DELETE TO authenticated"
        " USING (auth.uid() = user_id)"
    )
    erased = attack(
        conn, "authenticated", users.owner, "DELETE FROM token_usage WHERE id = %s", (users.charge,)
    )
    assert erased.worked
    check = doctor(cli)["ledger_writes"]
    assert check["status"] == "fail"
    assert "can erase charges" in check["message"] and "mint grants" not in check["message"]
    assert f"DELETE of its own charge row {users.charge} touched 1 row" in check["message"]


def test_a_foreign_key_error_from_the_probe_row_proves_nothing(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # Ledger rows must belong to a real auth user; the probe's user has no auth.users row
    # (this test's profiles predate the key), a real user does.
    lock_down_ledger(conn)
    conn.execute(
        "ALTER TABLE token_usage ADD CONSTRAINT token_usage_user_fk FOREIGN KEY (user_id)"
        " REFERENCES auth.users (id) NOT VALID"
    )
    conn.execute(
        "CREATE POLICY own_usage_insert ON token_usage FOR INSERT TO authenticated"
        " WITH CHECK (auth.uid() = user_id)"
    )
    signed_up = uuid.uuid4()
    conn.execute("INSERT INTO auth.users (id) VALUES (%s)", (signed_up,))
    assert mint_grant(conn, "authenticated", signed_up, signed_up).worked
    check = doctor(cli)["ledger_writes"]
    assert check["status"] == "fail"
    assert "foreign key error" in check["message"] and "this proves nothing" in check["message"]
    assert "catalog verdict" in check["message"]


def test_writable_overrides_fail_for_setting_prices(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute("ALTER TABLE token_usage ENABLE ROW LEVEL SECURITY")
    price = attack(
        conn, "authenticated", users.owner,
        "INSERT INTO ai_action_token_overrides (action_type, token_cost) VALUES ('chat', -1000000)",
    )  # fmt: skip
    assert price.worked
    check = doctor(cli)["overrides_writes"]
    assert check["status"] == "fail"
    assert "any signed-in user (authenticated) can set prices" in check["message"]
    assert "INSERT of an override touched 1 row" in check["message"]
    assert 'REVOKE INSERT, UPDATE, DELETE ON "ai_action_token_overrides"' in check["fix"]


def test_reading_the_ledger_with_rls_off_warns_and_writing_it_is_closed(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute("REVOKE INSERT, UPDATE, DELETE ON token_usage FROM anon, authenticated")
    seen = attack(
        conn, "anon", None, "SELECT 1 FROM token_usage WHERE user_id = %s", (users.other,)
    )
    assert seen.rows == 1
    assert mint_grant(conn, "authenticated", users.owner, users.owner).error == "42501"
    checks = doctor(cli)
    assert checks["ledger_writes"]["status"] == "ok"
    reads = checks["ledger_reads"]
    assert reads["status"] == "warn"
    assert "anyone with the anon key (anon)" in reads["message"]
    assert "ENABLE ROW LEVEL SECURITY" in reads["fix"]


def test_a_locked_ledger_and_price_table_are_ok(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    lock_down_ledger(conn)
    assert not mint_grant(conn, "authenticated", users.owner, users.owner).worked
    checks = doctor(cli)
    for name in ("ledger_writes", "ledger_reads", "overrides_writes", "overrides_reads"):
        assert checks[name]["status"] == "ok", checks[name]


def test_a_definer_view_over_the_ledger_is_probed_through_the_view(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    lock_down_ledger(conn)
    conn.execute("CREATE VIEW public.usage AS SELECT * FROM token_usage")
    assert not mint_grant(conn, "authenticated", users.owner, users.owner).worked
    through = attack(
        conn, "authenticated", users.owner,
        "INSERT INTO usage (user_id, action_type, tokens_used, success)"
        " VALUES (%s, 'admin_grant', 1000000, true)", (users.owner,),
    )  # fmt: skip
    assert through.worked
    checks = doctor(cli)
    assert checks["ledger_writes"]["status"] == "ok"
    view = checks["writable_views"]
    assert view["status"] == "fail"
    assert "can mint grants or erase charges through it" in view["message"]
    assert "INSERT through public.usage of a grant row" in view["message"]


# --- the write run's cheap look: catalog only ---


def _risks(conn: psycopg.Connection, settings: Settings) -> list[MintRisk]:
    # Catalog reads only: they run in a read-only transaction.
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        return ledger_mint_risks(conn, settings)


def test_mint_risks_name_every_role_table_and_how(
    conn: psycopg.Connection, settings: Settings, users: Users
) -> None:
    assert mint_grant(conn, "authenticated", users.owner, users.owner).worked
    risks = _risks(conn, settings)
    assert (
        MintRisk("authenticated", "token_usage", "INSERT", "INSERT granted and RLS is off") in risks
    )
    assert MintRisk("anon", "token_usage", "DELETE", "DELETE granted and RLS is off") in risks
    assert {(r.role, r.table) for r in risks} == {
        (role, table)
        for role in ("anon", "authenticated")
        for table in ("token_usage", "ai_action_token_overrides")
    }
    warning = mint_warning(risks)
    assert warning is not None and "\n" not in warning
    for word in (
        "anon",
        "authenticated",
        "token_usage",
        "ai_action_token_overrides",
        "tokenfix doctor",
    ):
        assert word in warning


def test_mint_risks_name_the_permitting_policy(
    conn: psycopg.Connection, settings: Settings, users: Users
) -> None:
    lock_down_ledger(conn)
    conn.execute(
        "CREATE POLICY own_usage_insert ON token_usage FOR INSERT TO authenticated"
        " WITH CHECK (auth.uid() = user_id)"
    )
    assert _risks(conn, settings) == [
        MintRisk(
            "authenticated",
            "token_usage",
            "INSERT",
            "INSERT granted and policy own_usage_insert permits it",
        )
    ]


def test_no_mint_risk_when_locked_or_only_charge_rows_may_be_inserted(
    conn: psycopg.Connection, settings: Settings, users: Users
) -> None:
    lock_down_ledger(conn)
    assert _risks(conn, settings) == []
    assert mint_warning([]) is None
    conn.execute(CHARGE_ONLY)
    assert mint_grant(conn, "authenticated", users.owner, users.owner).error == "42501"
    assert _risks(conn, settings) == []


def test_public_grants_are_a_mint_risk_without_supabase_grants(
    conn: psycopg.Connection, settings: Settings, ledger: Ledger
) -> None:
    conn.execute("GRANT INSERT ON token_usage TO PUBLIC")
    user = ledger.user()
    assert attack(
        conn, "anon", None,
        "INSERT INTO token_usage (user_id, action_type, tokens_used, success)"
        " VALUES (%s, 'admin_grant', 1000000, true)", (user,),
    ).worked  # fmt: skip
    # PUBLIC's grant reaches anon and authenticated, which exist in this cluster.
    assert _risks(conn, settings) == [
        MintRisk(role, "token_usage", "INSERT", "INSERT granted and RLS is off")
        for role in ("anon", "authenticated", "PUBLIC")
    ]


# --- doctor changes nothing ---

SNAPSHOT = """
SELECT c.oid::regclass::text FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
ORDER BY 1
"""


def _snapshot(conn: psycopg.Connection) -> dict[str, tuple[int, str | None]]:
    tables = [row[0] for row in conn.execute(SNAPSHOT).fetchall()]
    found = {}
    for table in tables:
        row = conn.execute(
            f"SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} AS t"
        ).fetchone()
        found[table] = (row[0], row[1])
    return found


def test_doctor_leaves_every_table_byte_for_byte_unchanged(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # Everything open, so that every probe succeeds, and triggers that write elsewhere.
    conn.execute("ALTER TABLE user_profiles DISABLE ROW LEVEL SECURITY")
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
    conn.execute("CREATE VIEW public.balances AS SELECT * FROM user_profiles")
    conn.execute("CREATE VIEW public.usage AS SELECT * FROM token_usage")
    before = _snapshot(conn)
    checks = doctor(cli)
    assert "touched 1 row and took effect" in checks["api_role_authenticated"]["message"]
    assert "touched 1 row and took effect" in checks["ledger_writes"]["message"]
    assert "touched 1 row and took effect" in checks["writable_views"]["message"]
    assert _snapshot(conn) == before
    assert conn.execute("SELECT to_regnamespace('tokenfix')").fetchone() == (None,)


def test_a_write_run_warns_once_when_api_roles_can_mint_ledger_rows_then_proceeds(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger
) -> None:
    make_supabase_like(conn)  # RLS off on the ledger, Supabase's default grants
    user = ledger.profile(ledger.user())
    ledger.row(user, 10, at=datetime.now(UTC) - timedelta(hours=1))
    result = cli("reconcile", "--all", "--yes", "--json")
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "token_usage" in warnings[0] and "tokenfix doctor" in warnings[0]
    assert any("token_usage" in w for w in result.json()["warnings"])
    assert ledger.cached(user) == (-10, 10)
