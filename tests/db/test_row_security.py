"""docs/monitoring.md: a connection subject to row-level security sees only part of the tables. diagnose
and reconcile say so on stderr at once (and in the JSON warnings), and every write run refuses
(exit 3) before it takes the lease, records a run or writes anything."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import tokenfix
from tests.db.test_mapping_shapes import EXAMPLES
from tests.support.builders import Ledger, ensure_role
from tests.support.clirunner import CliRunner

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
APP = "tf_rls_app"
"""A login role with plain privileges: what an app's own database user usually is."""
FIX = "connect as the table owner or a BYPASSRLS role such as Supabase's service_role"


def warning(role: str, tables: str) -> str:
    return (
        f"warning: row-level security applies to role {role} on {tables}: tokenfix sees only "
        "the rows its policies allow, so the missing profiles and drift it reports may be "
        f"false; {FIX}; see 'tokenfix doctor'"
    )


REFUSED = (
    f"error: row-level security applies to role {APP} on user_profiles: tokenfix sees only the "
    "rows its policies allow and would take the others for missing; nothing was written "
    f"({FIX}; 'tokenfix doctor' checks it)\n"
)


def as_role(db_url: str, role: str, **options: str) -> str:
    return make_conninfo(db_url, user=role, **options)


def grant_plain_access(conn: psycopg.Connection[Any], role: str) -> None:
    """Every privilege a write run needs (INSERT for --create-missing; CREATE on the database
    makes the audit schema), so that only row-level security can stop it."""
    conn.execute(
        sql.SQL(
            "GRANT SELECT, INSERT, UPDATE ON user_profiles, token_usage, ai_action_token_overrides"
            " TO {role}; GRANT CREATE ON DATABASE {db} TO {role}"
        ).format(role=sql.Identifier(role), db=sql.Identifier(conn.info.dbname))
    )


def grant_audit_access(conn: psycopg.Connection[Any], role: str) -> None:
    """The audit trail a revert reads and writes, made by the owner's earlier run."""
    conn.execute(
        sql.SQL(
            "GRANT USAGE ON SCHEMA tokenfix TO {role};"
            " GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tokenfix TO {role}"
        ).format(role=sql.Identifier(role))
    )


@pytest.fixture
def users(ledger: Ledger) -> tuple[uuid.UUID, uuid.UUID]:
    """A drifting user the policy shows and an in-step user it hides."""
    visible = ledger.profile(ledger.user(), remaining=5)
    ledger.row(visible, 40, at=HOUR_AGO)
    hidden = ledger.profile(ledger.user(), remaining=-30, used=30)
    ledger.row(hidden, 30, at=HOUR_AGO)
    return visible, hidden


@pytest.fixture
def app_url(db_url: str, conn: psycopg.Connection[Any], users: tuple[uuid.UUID, uuid.UUID]) -> str:
    """The app's role, under a policy on user_profiles that shows it the visible user only."""
    ensure_role(conn, APP)
    grant_plain_access(conn, APP)
    conn.execute("ALTER TABLE user_profiles ENABLE ROW LEVEL SECURITY")
    conn.execute(
        sql.SQL("CREATE POLICY only_one ON user_profiles TO {} USING (user_id = {})").format(
            sql.Identifier(APP), sql.Literal(users[0])
        )
    )
    return as_role(db_url, APP)


@pytest.fixture
def owners_run(cli: CliRunner, conn: psycopg.Connection[Any], app_url: str) -> str:
    """A run by the table owner that fixed both users, its audit trail open to the app's role,
    so that only row-level security can stop the app's role from reverting it."""
    run: str = cli("reconcile", "--all", "--yes", "--settle", "0", "--json").json()["run_id"]
    grant_audit_access(conn, APP)
    return run


def test_diagnose_warns_first_on_stderr_naming_the_role_and_the_table(
    cli: CliRunner, app_url: str, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    result = cli("diagnose", str(users[1]), "-d", app_url)
    assert result.stderr.splitlines()[0] == warning(APP, "user_profiles")
    assert result.stderr == warning(APP, "user_profiles") + "\n"


def test_diagnose_json_keeps_stdout_json_and_warns_on_stderr(
    cli: CliRunner, app_url: str, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    result = cli("diagnose", str(users[1]), "--json", "-d", app_url)
    assert result.json()["status"] == "missing_profile"  # what the role sees: the warning says so
    assert result.stderr == warning(APP, "user_profiles") + "\n"


def test_a_dry_run_warns_on_stderr_and_in_the_json_warnings(cli: CliRunner, app_url: str) -> None:
    result = cli("reconcile", "--all", "--dry-run", "--json", "-d", app_url)
    assert result.stderr == warning(APP, "user_profiles") + "\n"
    assert result.json()["warnings"] == [warning(APP, "user_profiles").removeprefix("warning: ")]


def test_a_dry_run_in_jsonl_carries_the_warning_as_a_warning_line(
    cli: CliRunner, app_url: str
) -> None:
    result = cli("reconcile", "--all", "--dry-run", "--format", "jsonl", "-d", app_url)
    lines = [line for line in result.stdout.splitlines() if '"type": "warning"' in line]
    assert len(lines) == 1 and f"role {APP} on user_profiles" in lines[0]


@pytest.mark.parametrize(
    "selection",
    [("--all",), ("VISIBLE",), ("--all", "--create-missing")],
    ids=["all", "user-ids", "create-missing"],
)
def test_a_write_run_refuses_before_the_lease_the_audit_or_any_write(
    cli: CliRunner,
    conn: psycopg.Connection[Any],
    app_url: str,
    ledger: Ledger,
    users: tuple[uuid.UUID, uuid.UUID],
    selection: tuple[str, ...],
) -> None:
    visible, hidden = users
    args = [str(visible) if a == "VISIBLE" else a for a in selection]
    result = cli("reconcile", *args, "--yes", "--settle", "0", "-d", app_url)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "", REFUSED)
    assert (ledger.cached(visible), ledger.cached(hidden)) == ((5, 0), (-30, 30))
    # The audit schema is made on a run's first write: no schema, so no run row and no lease.
    assert conn.execute("SELECT to_regnamespace('tokenfix')").fetchone() == (None,)


def test_a_revert_refuses_before_the_lease_or_any_write(
    cli: CliRunner,
    conn: psycopg.Connection[Any],
    app_url: str,
    ledger: Ledger,
    users: tuple[uuid.UUID, uuid.UUID],
    owners_run: str,
) -> None:
    # Under the policy the hidden user's row would read as deleted since the run.
    result = cli("revert", owners_run, "--yes", "-d", app_url)
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == REFUSED
    assert (ledger.cached(users[0]), ledger.cached(users[1])) == ((-40, 40), (-30, 30))
    runs = conn.execute("SELECT command FROM tokenfix.runs ORDER BY started_at").fetchall()
    assert runs == [("reconcile",)]


def test_a_revert_dry_run_warns_on_stderr_and_still_reads(
    cli: CliRunner, app_url: str, owners_run: str
) -> None:
    result = cli("revert", owners_run, "--dry-run", "--json", "-d", app_url)
    assert result.stderr == (
        f"warning: row-level security applies to role {APP} on user_profiles: tokenfix sees "
        "only the rows its policies allow, so the rows it reports as deleted or changed since "
        f"may be false; {FIX}; see 'tokenfix doctor'\n"
    )
    assert result.json()["dry_run"] is True


def test_a_revert_reads_no_ledger_so_a_policy_on_the_ledger_does_not_stop_it(
    cli: CliRunner, conn: psycopg.Connection[Any], db_url: str, ledger: Ledger
) -> None:
    user = ledger.profile(ledger.user(), remaining=5)
    ledger.row(user, 40, at=HOUR_AGO)
    ensure_role(conn, APP)
    grant_plain_access(conn, APP)
    conn.execute("ALTER TABLE token_usage ENABLE ROW LEVEL SECURITY")  # no policy: no rows
    run = cli("reconcile", "--all", "--yes", "--settle", "0", "--json").json()["run_id"]
    grant_audit_access(conn, APP)
    result = cli("revert", run, "--yes", "-d", as_role(db_url, APP))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert ledger.cached(user) == (5, 0)


def test_a_write_through_the_python_api_refuses_too(
    app_url: str, ledger: Ledger, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    settings = tokenfix.load_settings(database_url=app_url)
    request = tokenfix.Request(tokenfix.Selection(), dry_run=False, settle=timedelta(0))
    with tokenfix.connect(settings) as conn, pytest.raises(tokenfix.DatabaseProblem) as refused:
        tokenfix.reconcile(conn, settings, request)
    assert str(refused.value) == REFUSED.removeprefix("error: ").removesuffix("\n")
    assert refused.value.exit_code == 3
    assert ledger.cached(users[0]) == (5, 0)


def test_the_python_api_reports_the_warning_with_the_diagnosis_and_the_plan(
    app_url: str, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    settings = tokenfix.load_settings(database_url=app_url)
    heard: list[str] = []
    expected = warning(APP, "user_profiles").removeprefix("warning: ")
    with tokenfix.connect(settings) as conn:
        diagnosis = tokenfix.diagnose(conn, settings, users[1], on_warning=heard.append)
        plan = tokenfix.plan(conn, settings, tokenfix.Request(tokenfix.Selection()))
        plan.close()
    assert (heard, diagnosis.warnings, plan.warnings) == ([expected], (expected,), [expected])


def test_with_row_security_off_every_read_is_refused_at_once(
    cli: CliRunner, db_url: str, app_url: str, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    # row_security = off turns the policies' filter into an error on the first query.
    off = as_role(db_url, APP, options="-c row_security=off")
    result = cli("diagnose", str(users[1]), "-d", off)
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: row-level security applies to role {APP} on user_profiles and row_security is "
        f"off, so every query on it fails; nothing was read ({FIX}; 'tokenfix doctor' checks "
        "it)\n"
    )


@pytest.mark.parametrize("who", ["owner", "owner member", "bypassrls", "superuser"])
def test_roles_that_see_every_row_get_no_warning(
    cli: CliRunner, conn: psycopg.Connection[Any], db_url: str, app_url: str, who: str
) -> None:
    if who == "superuser":
        url = db_url
    else:
        role = {"owner": "tf_rls_owner", "owner member": APP, "bypassrls": "tf_rls_bypass"}[who]
        ensure_role(conn, "tf_rls_owner")
        ensure_role(conn, "tf_rls_bypass", "LOGIN BYPASSRLS")
        grant_plain_access(conn, "tf_rls_bypass")
        grant_plain_access(conn, "tf_rls_owner")
        conn.execute("ALTER TABLE user_profiles OWNER TO tf_rls_owner")
        if who == "owner member":  # membership with INHERIT acts as the owner
            conn.execute(f"GRANT tf_rls_owner TO {APP}")
        url = as_role(db_url, role)
    try:
        result = cli("reconcile", "--all", "--dry-run", "--json", "-d", url)
        assert (result.stderr, result.json()["warnings"]) == ("", [])
        assert result.json()["users_with_drift"] == 1
    finally:
        if who == "owner member":
            conn.execute(f"REVOKE tf_rls_owner FROM {APP}")


def test_the_owner_gets_the_warning_when_row_security_is_forced(
    cli: CliRunner, conn: psycopg.Connection[Any], db_url: str, app_url: str
) -> None:
    ensure_role(conn, "tf_rls_owner")
    grant_plain_access(conn, "tf_rls_owner")
    conn.execute("ALTER TABLE user_profiles OWNER TO tf_rls_owner")
    conn.execute("ALTER TABLE user_profiles FORCE ROW LEVEL SECURITY")
    result = cli("reconcile", "--all", "--dry-run", "-d", as_role(db_url, "tf_rls_owner"))
    assert result.stderr.splitlines()[0] == warning("tf_rls_owner", "user_profiles")


def test_a_price_table_under_row_level_security_is_named(
    cli: CliRunner, conn: psycopg.Connection[Any], db_url: str, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    ensure_role(conn, APP)
    grant_plain_access(conn, APP)
    conn.execute("ALTER TABLE ai_action_token_overrides ENABLE ROW LEVEL SECURITY")
    result = cli("reconcile", "--all", "--dry-run", "-d", as_role(db_url, APP))
    assert result.stderr.splitlines()[0] == warning(APP, "ai_action_token_overrides")


@pytest.fixture
def acquired_used(db_url: str, conn: psycopg.Connection[Any]) -> str:
    """examples/acquired-used, whose second ledger (usage_events) the app's role reads
    through row-level security that shows it nothing."""
    conn.execute((EXAMPLES / "acquired-used" / "schema.sql").read_text())
    conn.execute(
        "INSERT INTO customers (customer_id, credits_acquired, credits_used) VALUES ('c1', 900, 0);"
        " INSERT INTO credit_transactions (customer_id, amount, created_at)"
        "  VALUES ('c1', 900, now() - interval '1 hour');"
        " INSERT INTO usage_events (customer_id, cost_micros, created_at)"
        "  VALUES ('c1', 250, now() - interval '1 hour');"
        " ALTER TABLE usage_events ENABLE ROW LEVEL SECURITY"
    )
    ensure_role(conn, APP)
    conn.execute(
        sql.SQL("GRANT SELECT ON customers, credit_transactions, usage_events TO {}").format(
            sql.Identifier(APP)
        )
    )
    return as_role(db_url, APP)


def test_a_ledger_table_of_a_mapping_under_row_level_security_is_named(
    cli: CliRunner, acquired_used: str
) -> None:
    mapping = str(EXAMPLES / "acquired-used" / "tokenfix.toml")
    result = cli(
        "reconcile", "--all", "--dry-run", "--json", "--mapping", mapping, "-d", acquired_used
    )
    assert result.stderr == warning(APP, "usage_events") + "\n"
    assert result.json()["warnings"] == [warning(APP, "usage_events").removeprefix("warning: ")]


def test_doctor_names_every_ledger_of_a_mapping_under_row_level_security(
    cli: CliRunner, acquired_used: str
) -> None:
    mapping = str(EXAMPLES / "acquired-used" / "tokenfix.toml")
    result = cli("doctor", "--json", "--no-probe", "--mapping", mapping, "-d", acquired_used)
    (check,) = [c for c in result.json()["checks"] if c["name"] == "tool_rls"]
    assert (check["status"], check["message"]) == (
        "fail",
        f"row-level security applies to role {APP} on usage_events: tokenfix would see only the "
        "rows the policies allow and take the others for missing",
    )
