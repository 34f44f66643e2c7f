"""The trust boundary's second campaign on the ledger (docs/doctor.md): every change that moves
the expected balance up is probed — each grant action, every kind that is not a charge, each
column of the caller's charge rows, deletes — and a narrow refusal never clears a path the
catalogs leave open.

Ground truth first, as in the other trust-boundary tests: the attack runs as the API role
with PostgREST's settings (rolled back), and the owner's expected balance is computed by the
reference model (tests/reference.py) before and after it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
import pytest

from tests.support import reference
from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tests.support.doctoring import doctor_checks as doctor
from tests.support.supabase import acting_as, lock_down_ledger, make_supabase_like

GRANTS = ("admin_grant",)


@dataclass(frozen=True)
class Users:
    owner: uuid.UUID
    other: uuid.UUID
    charge: int  # a 'chat' charge row of owner's, 40 tokens, priced 3 by an override


@pytest.fixture
def users(conn: psycopg.Connection, ledger: Ledger) -> Users:
    """Supabase's grants; profiles closed; the ledger and prices locked, users read their own
    usage; each test opens one path."""
    make_supabase_like(conn)
    lock_down_ledger(conn)
    conn.execute("ALTER TABLE user_profiles ENABLE ROW LEVEL SECURITY")
    owner = ledger.profile(ledger.user(), remaining=100)
    other = ledger.profile(ledger.user(), remaining=50)
    charge = ledger.row(owner, 40, action="chat")
    ledger.row(owner, 7, action="summarize")
    ledger.row(other, 10, action="chat")
    ledger.override("chat", 3)
    return Users(owner, other, charge)


def expected(conn: psycopg.Connection, user: uuid.UUID, grants: tuple[str, ...]) -> int:
    rows = [
        reference.Row(*row)
        for row in conn.execute(
            "SELECT id, user_id, action_type, model_used, tokens_used, success, created_at"
            " FROM token_usage WHERE user_id = %s ORDER BY id",
            (user,),
        ).fetchall()
    ]
    overrides = [
        reference.Override(*row)
        for row in conn.execute(
            "SELECT id, action_type, model_used, token_cost, is_active, valid_from, valid_until"
            " FROM ai_action_token_overrides"
        ).fetchall()
    ]
    return reference.expected(rows, overrides, grants=grants).remaining


def raises_expected(
    conn: psycopg.Connection,
    user: uuid.UUID,
    statement: str,
    params: tuple[object, ...],
    *,
    method: str,
    grants: tuple[str, ...] = GRANTS,
) -> bool:
    """Ground truth: does `statement`, as the signed-in `user` through PostgREST, raise their
    expected balance? (rolled back)"""
    before = expected(conn, user, grants)
    with acting_as(conn, "authenticated", user, method=method, path="/token_usage"):
        try:
            with conn.transaction():
                conn.execute(statement, params)
        except psycopg.Error:
            return False
        conn.execute("RESET ROLE")
        return expected(conn, user, grants) > before


OWN_UPDATE = (
    "CREATE POLICY own_usage_update ON token_usage FOR UPDATE TO authenticated"
    " USING (auth.uid() = user_id)"
)


def _column_update(conn: psycopg.Connection, column: str) -> None:
    conn.execute("REVOKE UPDATE ON token_usage FROM authenticated")
    conn.execute(f"GRANT UPDATE ({column}) ON token_usage TO authenticated")
    conn.execute(OWN_UPDATE)


# --- 2. a narrow probe never overrules an open path ---


def test_users_updating_success_on_their_own_rows_erase_charges(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    _column_update(conn, "success")
    assert raises_expected(
        conn, users.owner, "UPDATE token_usage SET success = false WHERE id = %s",
        (users.charge,), method="PATCH",
    )  # fmt: skip
    assert not raises_expected(
        conn, users.owner, "UPDATE token_usage SET tokens_used = 0 WHERE id = %s",
        (users.charge,), method="PATCH",
    )  # fmt: skip
    messages = []
    for args in ((), ("--no-probe",)):
        check = doctor(cli, *args)["ledger_writes"]
        assert check["status"] == "fail", check
        assert "erase charges" in check["message"]
        messages.append(check["message"])
    probed = messages[0]  # the probing run's evidence
    assert f"marking its own charge row failed (success) {users.charge} touched 1 row" in probed


def test_users_updating_a_column_that_moves_no_balance_is_safe(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute("ALTER TABLE token_usage ADD COLUMN note text")
    _column_update(conn, "note")
    assert raises_expected(
        conn, users.owner, "UPDATE token_usage SET note = 'mine' WHERE id = %s",
        (users.charge,), method="PATCH",
    ) is False  # fmt: skip
    check = doctor(cli)["ledger_writes"]
    assert check["status"] == "ok", check


def test_turning_their_charge_into_a_grant_is_minting(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    _column_update(conn, "action_type")
    assert raises_expected(
        conn, users.owner, "UPDATE token_usage SET action_type = 'admin_grant' WHERE id = %s",
        (users.charge,), method="PATCH",
    )  # fmt: skip
    check = doctor(cli)["ledger_writes"]
    assert check["status"] == "fail"
    assert "turning its own charge row into a admin_grant" in check["message"]


def test_a_with_check_keeping_charges_charges_is_safe(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # The twin: the action may change, but only to another charge action; a dearer one
    # lowers the balance (chat is priced 3 by an override, summarize is not).
    conn.execute("REVOKE UPDATE ON token_usage FROM authenticated")
    conn.execute("GRANT UPDATE (action_type) ON token_usage TO authenticated")
    conn.execute(
        "CREATE POLICY own_usage_update ON token_usage FOR UPDATE TO authenticated"
        " USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id"
        " AND action_type <> ALL (ARRAY['admin_grant', 'admin_deduct']))"
    )
    assert not raises_expected(
        conn, users.owner, "UPDATE token_usage SET action_type = 'admin_grant' WHERE id = %s",
        (users.charge,), method="PATCH",
    )  # fmt: skip
    assert not raises_expected(
        conn, users.owner, "UPDATE token_usage SET action_type = 'summarize' WHERE id = %s",
        (users.charge,), method="PATCH",
    )  # fmt: skip
    check = doctor(cli)["ledger_writes"]
    assert check["status"] == "ok", check


def test_moving_their_charge_to_another_user_erases_it(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # Usage is public (a leaderboard), and the UPDATE policy checks only the old row: a
    # charge handed to another user leaves the caller's ledger.
    conn.execute("DROP POLICY own_usage_read ON token_usage")
    conn.execute("CREATE POLICY usage_read ON token_usage FOR SELECT TO authenticated USING (true)")
    conn.execute(
        "CREATE POLICY own_usage_update ON token_usage FOR UPDATE TO authenticated"
        " USING (auth.uid() = user_id) WITH CHECK (true)"
    )
    assert raises_expected(
        conn, users.owner, "UPDATE token_usage SET user_id = %s WHERE id = %s",
        (users.other, users.charge), method="PATCH",
    )  # fmt: skip
    check = doctor(cli)["ledger_writes"]
    assert check["status"] == "fail"
    assert "moving its own charge row away" in check["message"]


# --- 4. every grant action, every kind that is not a charge ---

BLOCKS_ADMIN_GRANT = (
    "CREATE POLICY own_usage_insert ON token_usage FOR INSERT TO authenticated"
    " WITH CHECK (auth.uid() = user_id AND action_type <> 'admin_grant')"
)


def test_an_insert_policy_blocking_only_the_first_grant_action_mints(
    cli: CliRunner, conn: psycopg.Connection, users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENFIX_GRANT_ACTION", "admin_grant,purchase")
    grants = ("admin_grant", "purchase")
    conn.execute(BLOCKS_ADMIN_GRANT)
    insert = (
        "INSERT INTO token_usage (user_id, action_type, tokens_used, success)"
        " VALUES (%s, %s, 1000000, true)"
    )
    assert not raises_expected(
        conn, users.owner, insert, (users.owner, "admin_grant"), method="POST", grants=grants
    )
    assert raises_expected(
        conn, users.owner, insert, (users.owner, "purchase"), method="POST", grants=grants
    )
    messages = []
    for args in ((), ("--no-probe",)):
        check = doctor(cli, *args)["ledger_writes"]
        assert check["status"] == "fail", check
        assert "can mint grants" in check["message"]
        messages.append(check["message"])
    message = messages[0]  # the probing run's evidence
    assert "INSERT of a grant row (purchase) for itself touched 1 row and took effect" in message
    assert "INSERT of a grant row (admin_grant) for itself was refused" in message


def test_the_same_policy_with_one_grant_action_is_self_reported_usage(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # The twin: admin_grant is the only grant action; a deduct row the policy lets in lowers
    # the balance, a charge row is usage the user reports.
    conn.execute(BLOCKS_ADMIN_GRANT)
    insert = (
        "INSERT INTO token_usage (user_id, action_type, tokens_used, success)"
        " VALUES (%s, %s, 5, true)"
    )
    assert not raises_expected(
        conn, users.owner, insert, (users.owner, "admin_deduct"), method="POST"
    )
    assert not raises_expected(conn, users.owner, insert, (users.owner, "chat"), method="POST")
    check = doctor(cli)["ledger_writes"]
    assert check["status"] == "warn", check
    assert (
        "INSERT of a deduct row (admin_deduct) for itself touched 1 row, but the expected"
        in (check["message"])
    )


def test_a_grant_row_a_trigger_marks_failed_is_not_minting(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # Users may log any row of their own, but a trigger marks rows they write as not counted
    # unless they are charges: a grant they insert counts for nothing.
    conn.execute(
        "CREATE POLICY own_usage_insert ON token_usage FOR INSERT TO authenticated"
        " WITH CHECK (auth.uid() = user_id)"
    )
    conn.execute(
        "CREATE FUNCTION uncount() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF current_user IN ('anon', 'authenticated')"
        "    AND NEW.action_type IN ('admin_grant', 'admin_deduct') THEN"
        "   NEW.success := false; END IF; RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER uncount BEFORE INSERT ON token_usage FOR EACH ROW EXECUTE FUNCTION uncount()"
    )
    assert not raises_expected(
        conn, users.owner,
        "INSERT INTO token_usage (user_id, action_type, tokens_used, success)"
        " VALUES (%s, 'admin_grant', 1000000, true)", (users.owner,), method="POST",
    )  # fmt: skip
    check = doctor(cli)["ledger_writes"]
    assert check["status"] == "warn", check


# --- 6. the ledger's fix closes the hole, ownership included ---


def test_an_api_role_owning_the_ledger_is_told_to_hand_it_over(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute("ALTER TABLE token_usage OWNER TO authenticated")
    grant = (
        "INSERT INTO token_usage (user_id, action_type, tokens_used, success)"
        " VALUES (%s, 'admin_grant', 1000000, true)"
    )
    assert raises_expected(conn, users.owner, grant, (users.owner,), method="POST")
    check = doctor(cli)["ledger_writes"]
    assert check["status"] == "fail"
    assert check["fix"].startswith('ALTER TABLE "token_usage" OWNER TO "postgres";')
    assert "unverified" not in check["fix"]
    for statement in check["fix"].split(";")[:3]:
        conn.execute(statement)
    assert not raises_expected(conn, users.owner, grant, (users.owner,), method="POST")


def test_an_api_role_owning_the_price_table_is_told_to_hand_it_over(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute("ALTER TABLE ai_action_token_overrides OWNER TO authenticated")
    free = "UPDATE ai_action_token_overrides SET token_cost = 0 WHERE action_type = 'chat'"
    assert raises_expected(conn, users.owner, free, (), method="PATCH")
    check = doctor(cli)["overrides_writes"]
    assert check["status"] == "fail"
    assert check["fix"].startswith('ALTER TABLE "ai_action_token_overrides" OWNER TO "postgres";')
    assert "unverified" not in check["fix"]
    for statement in check["fix"].split(";")[:3]:
        conn.execute(statement)
    assert not raises_expected(conn, users.owner, free, (), method="PATCH")
