"""`tokenfix doctor`: each check's verdict on real arrangements, including Supabase-shaped RLS."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.support.builders import BASE_TIME, Ledger, ensure_role
from tests.support.clirunner import CliRunner, Result
from tests.support.supabase import lock_down_ledger, make_supabase_like

PROFILES = "SELECT md5(string_agg(p::text, ',' ORDER BY user_id)) FROM user_profiles AS p"


def doctor(cli: CliRunner, *args: str) -> tuple[Result, dict[str, dict]]:
    result = cli("doctor", "--json", *args)
    data = result.json()
    assert set(data) == {"checks", "status", "generated_at", "duration_s", "tool_version", "target"}
    for check in data["checks"]:
        assert set(check) == {"name", "status", "message", "fix"}
        assert (check["fix"] is None) == (check["status"] == "ok")
    return result, {check["name"]: check for check in data["checks"]}


@pytest.fixture
def supabase(conn: psycopg.Connection, ledger: Ledger) -> uuid.UUID:
    """Supabase's grants, RLS on, users may read their own profile; one profile row. The
    ledger and the prices are closed to the API roles (docs/doctor.md), so these tests judge the
    profile arrangement alone."""
    make_supabase_like(conn)
    lock_down_ledger(conn)
    conn.execute("ALTER TABLE user_profiles ENABLE ROW LEVEL SECURITY")
    conn.execute(
        "CREATE POLICY own_profile_read ON user_profiles FOR SELECT TO authenticated"
        " USING (auth.uid() = user_id)"
    )
    return ledger.profile(ledger.user(), remaining=10)


def test_a_healthy_supabase_database_is_all_ok(
    cli: CliRunner, conn: psycopg.Connection, supabase: uuid.UUID
) -> None:
    conn.execute("REVOKE UPDATE ON user_profiles FROM anon, authenticated")
    conn.execute(
        "CREATE FUNCTION public.charge_tokens(amount integer) RETURNS void LANGUAGE sql"
        " SECURITY DEFINER SET search_path = '' AS $$"
        " UPDATE public.user_profiles SET vibe_assistant_tokens_remaining ="
        " vibe_assistant_tokens_remaining - amount, vibe_assistant_tokens_used ="
        " vibe_assistant_tokens_used + amount WHERE user_id = auth.uid() $$"
    )
    # docs/doctor.md: a SECURITY DEFINER function that any user may call is a warning (a negative
    # amount raises a balance); the healthy form leaves it to the server.
    conn.execute(
        "REVOKE EXECUTE ON FUNCTION public.charge_tokens(integer) FROM PUBLIC, anon, authenticated"
    )
    result, checks = doctor(cli)
    assert {name: c["status"] for name, c in checks.items() if c["status"] != "ok"} == {}
    assert result.exit_code == 0
    assert "charge_tokens(integer)" in checks["api_role_authenticated"]["message"]


def test_an_update_policy_for_users_fails_with_the_revoke(
    cli: CliRunner, conn: psycopg.Connection, supabase: uuid.UUID
) -> None:
    conn.execute(
        "CREATE POLICY own_profile_update ON user_profiles FOR UPDATE TO authenticated"
        " USING (auth.uid() = user_id)"
    )
    result, checks = doctor(cli)
    assert result.exit_code == 3
    check = checks["api_role_authenticated"]
    assert check["status"] == "fail"
    assert "touched 1 row" in check["message"] and "own_profile_update" in check["message"]
    assert 'REVOKE UPDATE ON "user_profiles" FROM "authenticated"' in check["fix"]
    assert checks["api_role_anon"]["status"] == "ok"
    assert "own_profile_update (UPDATE to authenticated" in checks["profiles_rls"]["message"]


def test_no_update_policy_is_the_seed_incident_and_warns(
    cli: CliRunner, supabase: uuid.UUID
) -> None:
    result, checks = doctor(cli)
    assert result.exit_code == 1
    check = checks["api_role_authenticated"]
    assert check["status"] == "warn"
    assert "touched 0 rows" in check["message"] and "silently updates 0 rows" in check["message"]
    assert "service role" in check["fix"] and "SECURITY DEFINER" in check["fix"]
    assert checks["api_role_service_role"]["status"] == "ok"
    assert "touched 1 row" in checks["api_role_service_role"]["message"]


def test_rls_off_with_api_grants_fails_for_anon_and_authenticated(
    cli: CliRunner, conn: psycopg.Connection, supabase: uuid.UUID
) -> None:
    conn.execute("ALTER TABLE user_profiles DISABLE ROW LEVEL SECURITY")
    result, checks = doctor(cli)
    assert result.exit_code == 3
    assert checks["api_role_anon"]["status"] == "fail"
    assert "anyone with the anon key" in checks["api_role_anon"]["message"]
    assert checks["api_role_authenticated"]["status"] == "fail"
    assert checks["profiles_rls"]["status"] == "warn"
    assert "ENABLE ROW LEVEL SECURITY" in checks["profiles_rls"]["fix"]


def test_a_grant_on_just_the_balance_column_counts(
    cli: CliRunner, conn: psycopg.Connection, supabase: uuid.UUID
) -> None:
    conn.execute("REVOKE UPDATE ON user_profiles FROM authenticated")
    conn.execute("GRANT UPDATE (vibe_assistant_tokens_remaining) ON user_profiles TO authenticated")
    conn.execute(
        "CREATE POLICY own_profile_update ON user_profiles FOR UPDATE TO authenticated"
        " USING (auth.uid() = user_id)"
    )
    _, checks = doctor(cli, "--no-probe")
    assert checks["api_role_authenticated"]["status"] == "fail"
    assert "probe off" in checks["api_role_authenticated"]["message"]
    _, probed = doctor(cli)
    assert probed["api_role_authenticated"]["status"] == "fail"


def test_a_select_only_policy_for_public_does_not_permit_updates(
    cli: CliRunner, conn: psycopg.Connection, supabase: uuid.UUID
) -> None:
    conn.execute("CREATE POLICY everyone_reads ON user_profiles FOR SELECT USING (true)")
    _, checks = doctor(cli, "--no-probe")
    assert checks["api_role_anon"]["status"] == "ok"
    assert "no RLS policy lets anon update" in checks["api_role_anon"]["message"]


def test_the_probe_changes_nothing(
    cli: CliRunner, conn: psycopg.Connection, supabase: uuid.UUID
) -> None:
    conn.execute(
        "CREATE POLICY own_profile_update ON user_profiles FOR UPDATE TO authenticated"
        " USING (auth.uid() = user_id)"
    )
    conn.execute(
        "CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN NEW.updated_at := now() + interval '1 day'; RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER bump BEFORE UPDATE ON user_profiles FOR EACH ROW EXECUTE FUNCTION bump()"
    )
    before = conn.execute(PROFILES).fetchone()
    doctor(cli)
    assert conn.execute(PROFILES).fetchone() == before


def test_the_probe_is_skipped_when_the_role_cannot_set_role(
    cli: CliRunner, conn: psycopg.Connection, db_url: str, supabase: uuid.UUID
) -> None:
    ensure_role(conn, "tokenfix_ops", "LOGIN BYPASSRLS")
    conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO tokenfix_ops")
    _, checks = doctor(cli, "-d", make_conninfo(db_url, user="tokenfix_ops"))
    message = checks["api_role_authenticated"]["message"]
    assert "cannot SET ROLE authenticated" in message and "catalog verdict" in message
    assert checks["privileges_write"]["status"] == "warn"
    assert checks["privileges_dry_run"]["status"] == "ok"


def test_a_security_definer_function_without_search_path_warns(
    cli: CliRunner, conn: psycopg.Connection
) -> None:
    conn.execute(
        "CREATE FUNCTION grant_tokens(who uuid, amount integer) RETURNS void LANGUAGE sql"
        " SECURITY DEFINER AS $$ UPDATE user_profiles SET vibe_assistant_tokens_remaining ="
        " vibe_assistant_tokens_remaining + amount WHERE user_id = who $$"
    )
    _, checks = doctor(cli)
    check = checks["security_definer_functions"]
    assert check["status"] == "warn"
    assert "grant_tokens(uuid,integer)" in check["message"]
    assert "SET search_path = ''" in check["fix"]


def test_the_tool_subject_to_rls_fails(
    cli: CliRunner, conn: psycopg.Connection, db_url: str
) -> None:
    ensure_role(conn, "tokenfix_limited", "LOGIN")
    conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO tokenfix_limited")
    conn.execute("ALTER TABLE user_profiles ENABLE ROW LEVEL SECURITY")
    result, checks = doctor(cli, "-d", make_conninfo(db_url, user="tokenfix_limited"))
    assert result.exit_code == 3
    assert checks["tool_rls"]["status"] == "fail"
    assert "user_profiles" in checks["tool_rls"]["message"]


def test_missing_read_privileges_fail_the_dry_run_check(
    cli: CliRunner, conn: psycopg.Connection, db_url: str
) -> None:
    ensure_role(conn, "tokenfix_nobody", "LOGIN")
    result, checks = doctor(cli, "-d", make_conninfo(db_url, user="tokenfix_nobody"))
    assert result.exit_code == 3
    check = checks["privileges_dry_run"]
    assert check["status"] == "fail"
    assert check["fix"].startswith('GRANT SELECT ON "token_usage", "user_profiles"')


def test_a_missing_table_fails_and_other_checks_still_run(
    cli: CliRunner, conn: psycopg.Connection
) -> None:
    conn.execute("DROP TABLE user_profiles")
    result, checks = doctor(cli)
    assert result.exit_code == 3
    assert checks["profiles_table"]["status"] == "fail"
    assert "TOKENFIX_PROFILES_TABLE" in checks["profiles_table"]["fix"]
    assert checks["usage_table"]["status"] == "ok"
    assert checks["index_user_id"]["status"] == "ok"


def test_types_are_judged_by_family_and_naive_timestamps_are_a_note(
    cli: CliRunner, conn: psycopg.Connection
) -> None:
    # docs/mapping.md: any integer or numeric amount, any key or id type; naive times read as UTC.
    conn.execute("ALTER TABLE token_usage ALTER COLUMN tokens_used TYPE bigint")
    conn.execute("ALTER TABLE token_usage ALTER COLUMN id DROP IDENTITY")
    conn.execute("ALTER TABLE token_usage ALTER COLUMN id TYPE text")
    conn.execute(
        "ALTER TABLE user_profiles ALTER COLUMN vibe_assistant_tokens_used TYPE numeric(30,5)"
    )
    conn.execute("ALTER TABLE user_profiles ALTER COLUMN updated_at TYPE timestamp")
    _, checks = doctor(cli)
    assert checks["usage_table"]["status"] == "ok"
    assert checks["profiles_table"]["status"] == "ok"
    assert "updated_at without time zone, read as UTC" in checks["profiles_table"]["message"]
    conn.execute("ALTER TABLE token_usage ALTER COLUMN success TYPE text")
    _, checks = doctor(cli)
    assert checks["usage_table"]["status"] == "fail"
    assert "success is text, expected boolean" in checks["usage_table"]["message"]


def test_a_ledger_key_of_another_type_than_the_balance_key_warns(
    cli: CliRunner, conn: psycopg.Connection
) -> None:
    conn.execute("ALTER TABLE token_usage ALTER COLUMN user_id TYPE text")
    _, checks = doctor(cli)
    assert checks["key_types"]["status"] == "warn"
    assert "cast to uuid" in checks["key_types"]["message"]


def test_the_configured_names_are_checked(
    cli: CliRunner, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn.execute("ALTER TABLE user_profiles RENAME vibe_assistant_tokens_used TO spent")
    _, checks = doctor(cli)
    assert checks["profiles_table"]["status"] == "fail"
    monkeypatch.setenv("TOKENFIX_USED_COLUMN", "spent")
    _, checks = doctor(cli)
    assert checks["profiles_table"]["status"] == "ok"


def test_a_missing_index_prints_the_create_index_concurrently(
    cli: CliRunner, conn: psycopg.Connection
) -> None:
    conn.execute("DROP INDEX token_usage_user_id_idx")
    conn.execute("DROP INDEX token_usage_created_at_idx")
    result, checks = doctor(cli)
    assert checks["index_user_id"]["fix"] == (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "token_usage_user_id_idx" ON "token_usage" ("user_id");'
    )
    assert checks["index_created_at"]["status"] == "warn"
    assert result.exit_code == 1


def test_ambiguous_overrides_are_named(cli: CliRunner, ledger: Ledger) -> None:
    ledger.override("chat", 5, model="gpt-4", valid_from=BASE_TIME, id=11)
    ledger.override("chat", 6, model="gpt-4", valid_from=BASE_TIME, id=12)  # ties with 11
    ledger.override("chat", 7, valid_until=BASE_TIME, id=13)
    ledger.override("chat", 8, valid_from=BASE_TIME, id=14)  # same model (any), other start
    ledger.override("image", 1, valid_until=BASE_TIME, id=15)
    ledger.override("image", 2, valid_until=BASE_TIME - timedelta(days=1), id=16)  # ties with 15
    ledger.override(
        "code", 1, valid_from=BASE_TIME, valid_until=BASE_TIME + timedelta(days=1), id=17
    )
    ledger.override("code", 2, valid_from=BASE_TIME, valid_until=BASE_TIME, id=18)  # empty window
    ledger.override("code", 3, valid_from=BASE_TIME, active=False, id=19)
    _, checks = doctor(cli)
    check = checks["ambiguous_overrides"]
    assert check["status"] == "warn"
    assert "2 pairs" in check["message"]
    assert (
        "11 and 12 (chat/gpt-4)" in check["message"]
        and "15 and 16 (image/any model)" in check["message"]
    )


def test_invalid_rows_and_missing_profiles_are_counted(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user())
    ledger.row(user, None)
    ledger.row(user, -4)
    ledger.row(user, 10, success=None)
    for _ in range(2):
        stranger = ledger.user()
        ledger.row(stranger, 5)
        ledger.row(stranger, 5)
    _, checks = doctor(cli)
    assert checks["invalid_rows"]["message"].startswith("3 rows of token_usage")
    assert checks["missing_profiles"]["message"].startswith("2 users with ledger rows")


def test_an_unreachable_database_is_one_failed_check_and_exit_3(cli: CliRunner) -> None:
    result = cli("doctor", "--json", "-d", "postgresql://u:pw-secret@127.0.0.1:9/x")
    assert result.exit_code == 3
    data = result.json()
    assert data["status"] == "fail"
    assert [c["name"] for c in data["checks"]] == ["connection"]
    assert "pw-secret" not in result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_human_report_has_one_line_per_check(cli: CliRunner, supabase: uuid.UUID) -> None:
    result = cli("doctor")
    assert result.exit_code == 1
    assert "warn  api_role_authenticated" in result.stdout
    assert "→ fix:" in result.stdout
    assert "ok    connection" in result.stdout
