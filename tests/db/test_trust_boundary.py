"""docs/doctor.md, the balance side: can an API role raise a balance — directly, through a view, by a
policy that trusts user_metadata, through a SECURITY DEFINER function?

Every test first finds the ground truth by attacking as the role itself, with the claims a real
user's token carries, in a transaction that is rolled back (tests/support/supabase.py); then it checks
doctor's verdict against it.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tests.support.doctoring import Users
from tests.support.doctoring import doctor_checks as doctor
from tests.support.supabase import (
    attack,
    lock_down_ledger,
    make_supabase_like,
    raise_balance,
    raise_everyone,
)

OWN_UPDATE = (
    "CREATE POLICY own_update ON user_profiles FOR UPDATE TO authenticated"
    " USING (auth.uid() = user_id)"
)
API_CHECKS = ("api_role_anon", "api_role_authenticated", "api_role_public", "api_role_service_role")


@pytest.fixture
def users(conn: psycopg.Connection, ledger: Ledger) -> Users:
    """Supabase's grants; RLS on the profiles, users read their own; ledger and prices closed."""
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
    return Users(owner, other)


def test_an_own_row_update_policy_fails_with_their_own_balance(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(OWN_UPDATE)
    assert raise_balance(conn, "authenticated", users.owner, users.owner)
    assert not raise_balance(conn, "authenticated", users.owner, users.other)
    check = doctor(cli)["api_role_authenticated"]
    assert check["status"] == "fail"
    assert "can raise their own balance" in check["message"]
    assert "any user's balance" not in check["message"]
    assert "own_update" in check["fix"]


def test_an_always_true_update_policy_fails_with_any_users_balance(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(
        "CREATE POLICY anyone_updates ON user_profiles FOR UPDATE TO authenticated USING (true)"
    )
    # A WHERE on another's row meets the own-row SELECT policy; a PATCH without one does not.
    assert not raise_balance(conn, "authenticated", users.owner, users.other)
    assert raise_everyone(conn, "authenticated", users.owner) == {users.owner, users.other}
    for args in ((), ("--no-probe",)):
        check = doctor(cli, *args)["api_role_authenticated"]
        assert check["status"] == "fail"
        assert "can raise any user's balance" in check["message"]


def test_rls_off_with_supabase_grants_fails_with_any_users_balance(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute("ALTER TABLE user_profiles DISABLE ROW LEVEL SECURITY")
    assert raise_balance(conn, "anon", None, users.other)
    assert raise_balance(conn, "authenticated", users.owner, users.other)
    checks = doctor(cli)
    for role in ("anon", "authenticated"):
        assert checks[f"api_role_{role}"]["status"] == "fail"
        assert "any user's balance" in checks[f"api_role_{role}"]["message"]
    assert checks["api_role_service_role"]["status"] == "ok"


def test_a_column_update_grant_is_probed_on_the_granted_column(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute("REVOKE UPDATE ON user_profiles FROM authenticated")
    conn.execute("GRANT UPDATE (vibe_assistant_tokens_remaining) ON user_profiles TO authenticated")
    conn.execute(OWN_UPDATE)
    assert raise_balance(conn, "authenticated", users.owner, users.owner)
    used = attack(
        conn, "authenticated", users.owner,
        "UPDATE user_profiles SET vibe_assistant_tokens_used = 0 WHERE user_id = %s",
        (users.owner,),
    )  # fmt: skip
    assert used.error == "42501"
    check = doctor(cli)["api_role_authenticated"]
    assert check["status"] == "fail"
    assert "their own balance" in check["message"] and "touched 1 row" in check["message"]


def test_a_trigger_refusing_api_role_balance_changes_is_protection(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # Users may update their own profile row, but a trigger keeps the balance the server's.
    conn.execute(OWN_UPDATE)
    conn.execute(
        "CREATE FUNCTION guard_balance() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF (NEW.vibe_assistant_tokens_remaining, NEW.vibe_assistant_tokens_used)"
        "    IS DISTINCT FROM (OLD.vibe_assistant_tokens_remaining, OLD.vibe_assistant_tokens_used)"
        "    AND current_user IN ('anon', 'authenticated') THEN"
        "   RAISE EXCEPTION 'balances are changed by the server only';"
        " END IF; RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER guard_balance BEFORE UPDATE ON user_profiles"
        " FOR EACH ROW EXECUTE FUNCTION guard_balance()"
    )
    assert not raise_balance(conn, "authenticated", users.owner, users.owner)
    touched = attack(
        conn, "authenticated", users.owner,
        "UPDATE user_profiles SET updated_at = now() WHERE user_id = %s", (users.owner,),
    )  # fmt: skip
    assert touched.worked  # the row is theirs to update: only the balance is guarded
    checks = doctor(cli)
    assert {name: checks[name]["status"] for name in API_CHECKS} == dict.fromkeys(API_CHECKS, "ok")
    assert (
        "refused by trigger function guard_balance()" in checks["api_role_authenticated"]["message"]
    )


def test_a_check_constraint_refusal_is_protection(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # The owner's balance is at the cap: no user can push it higher.
    conn.execute(
        "ALTER TABLE user_profiles ADD CONSTRAINT balance_cap"
        " CHECK (vibe_assistant_tokens_remaining <= 100)"
    )
    conn.execute(OWN_UPDATE)
    assert not raise_balance(conn, "authenticated", users.owner, users.owner)
    refused = attack(
        conn, "authenticated", users.owner,
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = 101 WHERE user_id = %s",
        (users.owner,),
    )  # fmt: skip
    assert refused.error == "23514"
    check = doctor(cli)["api_role_authenticated"]
    assert check["status"] == "ok"
    assert "refused by CHECK constraint balance_cap" in check["message"]


def test_a_not_null_error_from_the_probe_row_proves_nothing(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # An audit trigger records the user's display name from the JWT: real users set one in
    # their metadata, the probe's token has none, so its update fails on its own row, not on
    # a protection.
    conn.execute(OWN_UPDATE)
    conn.execute("CREATE TABLE balance_audit (name text NOT NULL)")
    conn.execute(
        "CREATE FUNCTION audit_balance() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
        " SET search_path = public AS $$ BEGIN INSERT INTO balance_audit (name)"
        " VALUES (auth.jwt() -> 'user_metadata' ->> 'name'); RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER audit_balance AFTER UPDATE ON user_profiles"
        " FOR EACH ROW EXECUTE FUNCTION audit_balance()"
    )
    named = {"user_metadata": {"name": "Ada"}}
    assert raise_balance(conn, "authenticated", users.owner, users.owner, **named)
    check = doctor(cli)["api_role_authenticated"]
    assert check["status"] == "fail"
    assert "NOT NULL" in check["message"] and "this proves nothing" in check["message"]
    assert "catalog verdict" in check["message"]


def test_a_trigger_calling_outside_the_database_is_never_probed(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # A stand-in for pg_net: every call takes a sequence value, which no rollback returns.
    conn.execute("CREATE SCHEMA net")
    conn.execute("CREATE SEQUENCE net.calls")
    conn.execute(
        "CREATE FUNCTION net.http_post(url text, body jsonb) RETURNS bigint LANGUAGE sql"
        " SECURITY DEFINER AS $$ SELECT nextval('net.calls') $$"
    )
    conn.execute(
        "CREATE FUNCTION balance_webhook() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " PERFORM net.http_post('https://hooks.example.com/balance', to_jsonb(NEW));"
        " RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER balance_webhook AFTER UPDATE ON user_profiles"
        " FOR EACH ROW EXECUTE FUNCTION balance_webhook()"
    )
    conn.execute("GRANT USAGE ON SCHEMA net TO anon, authenticated, service_role")
    conn.execute(OWN_UPDATE)
    # A write through this view fires the table's triggers too.
    conn.execute("CREATE VIEW public.balances AS SELECT * FROM user_profiles")
    assert raise_balance(conn, "authenticated", users.owner, users.owner)
    calls = "SELECT last_value FROM net.calls"
    before = conn.execute(calls).fetchone()
    checks = doctor(cli)
    assert conn.execute(calls).fetchone() == before  # no probe fired the webhook
    check = checks["api_role_authenticated"]
    assert check["status"] == "fail"
    assert "probe skipped: trigger balance_webhook" in check["message"]
    assert "calls outside the database" in check["message"]
    assert "catalog verdict" in check["message"] and "touched" not in check["message"]
    assert "probe skipped" in checks["api_role_service_role"]["message"]
    view = checks["writable_views"]
    assert view["status"] == "fail"
    assert "probe skipped: trigger balance_webhook" in view["message"]


def test_a_definer_view_writable_by_api_roles_fails_through_the_view(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(
        "CREATE VIEW public.balances AS SELECT user_id, vibe_assistant_tokens_remaining,"
        " vibe_assistant_tokens_used FROM user_profiles"
    )  # Supabase's default privileges give anon and authenticated everything on it
    assert not raise_balance(conn, "authenticated", users.owner, users.other)
    through = attack(
        conn, "authenticated", users.owner,
        "UPDATE balances SET vibe_assistant_tokens_remaining = 1000000 WHERE user_id = %s",
        (users.other,),
        then="SELECT vibe_assistant_tokens_remaining FROM user_profiles WHERE user_id = %s",
        then_params=(users.other,),
    )  # fmt: skip
    assert through.after == (1_000_000,)
    checks = doctor(cli)
    check = checks["writable_views"]
    assert check["status"] == "fail"
    assert "view public.balances over user_profiles" in check["message"]
    assert "can raise any user's balance through it" in check["message"]
    assert "UPDATE +1 through public.balances touched 1 row" in check["message"]
    assert 'ALTER VIEW "public"."balances" SET (security_invoker = true)' in check["fix"]
    assert checks["api_role_authenticated"]["status"] != "fail"
    assert doctor(cli, "--no-probe")["writable_views"]["status"] == "fail"


def test_a_security_invoker_view_adds_no_fail(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(
        "CREATE VIEW public.balances WITH (security_invoker = true) AS SELECT user_id,"
        " vibe_assistant_tokens_remaining, vibe_assistant_tokens_used FROM user_profiles"
    )
    through = attack(
        conn, "authenticated", users.owner,
        "UPDATE balances SET vibe_assistant_tokens_remaining = 1000000 WHERE user_id = %s",
        (users.owner,),
    )  # fmt: skip
    assert not through.worked
    checks = doctor(cli)
    assert checks["writable_views"]["status"] == "ok"
    assert "security_invoker" in checks["writable_views"]["message"]
    assert [n for n, c in checks.items() if c["status"] == "fail"] == []


def test_a_policy_trusting_user_metadata_fails(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(
        "CREATE POLICY admins_update ON user_profiles FOR UPDATE TO authenticated"
        " USING ((auth.jwt() -> 'user_metadata' ->> 'role') = 'admin')"
    )
    assert raise_everyone(conn, "authenticated", users.owner) == set()
    # ...until the user calls supabase.auth.updateUser({data: {role: 'admin'}}):
    admin = {"user_metadata": {"role": "admin"}}
    assert raise_everyone(conn, "authenticated", users.owner, **admin) == {users.owner, users.other}
    checks = doctor(cli)
    policy = checks["user_metadata_policies"]
    assert policy["status"] == "fail"
    assert "admins_update (UPDATE to authenticated) on user_profiles" in policy["message"]
    assert "app_metadata" in policy["fix"]
    balance = checks["api_role_authenticated"]
    assert balance["status"] == "fail"  # the probe's 0 rows do not overrule the policy
    assert "trusts it and users set their own" in balance["message"]


def test_a_policy_calling_a_function_that_reads_raw_user_meta_data_fails(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(
        "CREATE FUNCTION public.is_admin() RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER"
        " SET search_path = '' AS $$ SELECT coalesce((SELECT u.raw_user_meta_data ->> 'role'"
        " = 'admin' FROM auth.users AS u WHERE u.id = auth.uid()), false) $$"
    )
    conn.execute(
        "CREATE POLICY admins_update ON user_profiles FOR UPDATE TO authenticated"
        " USING (public.is_admin())"
    )
    # A user who set their own metadata: auth.users.raw_user_meta_data is what they wrote.
    conn.execute(
        'INSERT INTO auth.users (id, raw_user_meta_data) VALUES (%s, \'{"role": "admin"}\')',
        (users.owner,),
    )
    assert raise_everyone(conn, "authenticated", users.owner) == {users.owner, users.other}
    assert raise_everyone(conn, "authenticated", users.other) == set()
    check = doctor(cli)["user_metadata_policies"]
    assert check["status"] == "fail"
    assert "through is_admin()" in check["message"]


def test_a_definer_function_executable_by_public_warns_and_is_never_called(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(
        "CREATE FUNCTION public.spend_tokens(amount integer) RETURNS void LANGUAGE sql"
        " SECURITY DEFINER SET search_path = '' AS $$ UPDATE public.user_profiles SET"
        " vibe_assistant_tokens_remaining = vibe_assistant_tokens_remaining - amount"
        " WHERE user_id = auth.uid() $$"
    )
    spent = attack(
        conn, "authenticated", users.owner, "SELECT public.spend_tokens(-1000)",
        then="SELECT vibe_assistant_tokens_remaining FROM user_profiles WHERE user_id = %s",
        then_params=(users.owner,),
    )  # fmt: skip
    assert spent.after == (1100,)  # 100 - (-1000)
    checks = doctor(cli)
    check = checks["security_definer_callable"]
    assert check["status"] == "warn"
    assert "spend_tokens(integer) writes user_profiles" in check["message"]
    assert "anon, authenticated, PUBLIC" in check["message"]
    assert (
        "REVOKE EXECUTE ON FUNCTION spend_tokens(integer) FROM PUBLIC, anon, authenticated"
        in check["fix"]
    )
    assert checks["security_definer_functions"]["status"] == "ok"  # its search_path is fixed
    assert conn.execute(
        "SELECT vibe_assistant_tokens_remaining FROM user_profiles WHERE user_id = %s",
        (users.owner,),
    ).fetchone() == (100,)


def test_a_definer_function_revoked_from_the_api_roles_does_not_warn(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(
        "CREATE FUNCTION public.spend_tokens(amount integer) RETURNS void LANGUAGE sql"
        " SECURITY DEFINER SET search_path = '' AS $$ UPDATE public.user_profiles SET"
        " vibe_assistant_tokens_remaining = vibe_assistant_tokens_remaining - amount"
        " WHERE user_id = auth.uid() $$"
    )
    conn.execute(
        "REVOKE EXECUTE ON FUNCTION public.spend_tokens(integer) FROM PUBLIC, anon, authenticated"
    )
    conn.execute("GRANT EXECUTE ON FUNCTION public.spend_tokens(integer) TO service_role")
    assert attack(
        conn, "authenticated", users.owner, "SELECT public.spend_tokens(-1000)"
    ).error == ("42501")
    assert doctor(cli)["security_definer_callable"]["status"] == "ok"


def test_permission_denied_is_its_own_finding_not_a_silent_zero_row_update(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute("REVOKE UPDATE ON user_profiles FROM authenticated")
    denied = attack(
        conn, "authenticated", users.owner,
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = 1 WHERE user_id = %s",
        (users.owner,),
    )  # fmt: skip
    assert denied.error == "42501"
    check = doctor(cli)["api_role_authenticated"]
    assert check["status"] == "warn"
    assert "permission denied (error 42501)" in check["message"]
    assert "silently" not in check["message"]


def test_without_a_select_policy_a_filterless_update_still_counts(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # The probe's WHERE sees no row (no SELECT policy), but PATCH without a filter is judged
    # by the UPDATE policy alone, and raises the caller's own balance.
    conn.execute("DROP POLICY own_profile_read ON user_profiles")
    conn.execute(OWN_UPDATE)
    assert not raise_balance(conn, "authenticated", users.owner, users.owner)
    filterless = attack(
        conn, "authenticated", users.owner,
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = 1000000",
        then="SELECT vibe_assistant_tokens_remaining FROM user_profiles WHERE user_id = %s",
        then_params=(users.owner,),
    )  # fmt: skip
    assert (filterless.rows, filterless.after) == (1, (1_000_000,))
    check = doctor(cli)["api_role_authenticated"]
    assert check["status"] == "fail"
    assert "their own balance" in check["message"] and "without a filter" in check["message"]


def test_service_role_is_shown_and_never_fails(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute("ALTER TABLE user_profiles DISABLE ROW LEVEL SECURITY")
    check = doctor(cli)["api_role_service_role"]
    assert check["status"] == "ok"
    assert "bypasses RLS" in check["message"] and "postgres (superuser)" in check["message"]
    conn.execute("REVOKE UPDATE ON user_profiles FROM service_role")
    assert doctor(cli)["api_role_service_role"]["status"] == "warn"


def test_public_is_judged_from_the_catalogs(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute("GRANT UPDATE ON user_profiles TO PUBLIC")
    conn.execute(
        "CREATE POLICY everyone_updates ON user_profiles FOR UPDATE USING (true)"
    )  # TO PUBLIC
    assert raise_everyone(conn, "anon", None) == {users.owner, users.other}
    checks = doctor(cli)
    assert checks["api_role_public"]["status"] == "fail"
    assert 'REVOKE UPDATE ON "user_profiles" FROM PUBLIC' in checks["api_role_public"]["fix"]
    assert "FROM PUBLIC" in checks["api_role_anon"]["fix"]


def test_no_probe_gives_catalog_verdicts_for_all_of_it(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(OWN_UPDATE)
    conn.execute(
        "CREATE POLICY admins_update ON user_profiles FOR UPDATE TO authenticated"
        " USING ((auth.jwt() -> 'user_metadata' ->> 'role') = 'admin')"
    )
    conn.execute("CREATE VIEW public.balances AS SELECT * FROM user_profiles")
    conn.execute(
        "CREATE FUNCTION public.spend_tokens(amount integer) RETURNS void LANGUAGE sql"
        " SECURITY DEFINER SET search_path = '' AS $$ UPDATE public.user_profiles SET"
        " vibe_assistant_tokens_remaining = vibe_assistant_tokens_remaining - amount"
        " WHERE user_id = auth.uid() $$"
    )
    conn.execute("ALTER TABLE token_usage DISABLE ROW LEVEL SECURITY")
    conn.execute("ALTER TABLE ai_action_token_overrides DISABLE ROW LEVEL SECURITY")
    checks = doctor(cli, "--no-probe")
    assert {name: c["status"] for name, c in checks.items() if c["status"] != "ok"} == {
        "api_role_authenticated": "fail",
        "writable_views": "fail",
        "user_metadata_policies": "fail",
        "security_definer_callable": "warn",
        "ledger_writes": "fail",
        "ledger_reads": "warn",
        "overrides_writes": "fail",
        "overrides_reads": "warn",
    }
    for name in ("api_role_authenticated", "writable_views", "ledger_writes", "overrides_writes"):
        assert "probe off (--no-probe): catalog verdict" in checks[name]["message"]
        assert "touched" not in checks[name]["message"]
