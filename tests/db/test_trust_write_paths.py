"""The trust boundary's second campaign (docs/doctor.md): every write path to the balance
table, PostgREST's real request settings, fixes that close the hole.

Each arrangement is a hole or its safe twin. The test first attacks as the API role itself,
with exactly the settings PostgREST 10+ sets (tests/supabase.py, always rolled back), then
checks doctor's verdict, and for a hole, that the fix doctor prints closes it.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tests.support.doctoring import Users
from tests.support.doctoring import doctor_checks as doctor
from tests.support.supabase import (
    acting_as,
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
OWN_INSERT = (
    "CREATE POLICY own_insert ON user_profiles FOR INSERT TO authenticated"
    " WITH CHECK (auth.uid() = user_id)"
)
OWN_DELETE = (
    "CREATE POLICY own_delete ON user_profiles FOR DELETE TO authenticated"
    " USING (auth.uid() = user_id)"
)
REMAINING = "SELECT vibe_assistant_tokens_remaining FROM user_profiles WHERE user_id = %s"


@pytest.fixture
def users(conn: psycopg.Connection, ledger: Ledger) -> Users:
    """Supabase's grants; RLS on the profiles, users read their own; ledger and prices closed;
    every user a real auth user (profiles reference auth.users, as on Supabase)."""
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
    conn.execute("INSERT INTO auth.users (id) VALUES (%s), (%s)", (owner, other))
    return Users(owner, other)


def post_profile(
    conn: psycopg.Connection, role: str, sub: uuid.UUID | None, user: uuid.UUID
) -> bool:
    """Ground truth: can `role` POST a profile for `user` holding 1,000,000 tokens?"""
    done = attack(
        conn, role, sub,
        "INSERT INTO user_profiles (user_id, vibe_assistant_tokens_remaining,"
        " vibe_assistant_tokens_used) VALUES (%s, 1000000, 0)", (user,),
        then=REMAINING, then_params=(user,), method="POST",
    )  # fmt: skip
    return done.worked and done.after == (1_000_000,)


def delete_then_post(conn: psycopg.Connection, user: uuid.UUID) -> bool:
    """Ground truth: can the owner DELETE their profile, then POST it back with 1,000,000?
    (two requests, one rolled-back transaction)"""
    with acting_as(conn, "authenticated", user, method="DELETE"):
        try:
            with conn.transaction():
                gone = conn.execute("DELETE FROM user_profiles WHERE user_id = %s", (user,))
                if gone.rowcount == 0:
                    return False
                conn.execute("SELECT set_config('request.method', 'POST', true)")
                conn.execute(
                    "INSERT INTO user_profiles (user_id, vibe_assistant_tokens_remaining,"
                    " vibe_assistant_tokens_used) VALUES (%s, 1000000, 0)",
                    (user,),
                )
        except psycopg.Error:
            return False
        conn.execute("RESET ROLE")
        return conn.execute(REMAINING, (user,)).fetchone() == (1_000_000,)


def apply_fix(conn: psycopg.Connection, fix: str) -> None:
    """Run the SQL statements a fix begins with (up to the first piece of advice)."""
    for statement in fix.split(";"):
        statement = statement.strip()
        if not statement.upper().startswith(("REVOKE", "GRANT", "ALTER", "DROP", "CREATE")):
            break
        conn.execute(statement)


# --- 1. PostgREST's settings, never the legacy ones ---

LEGACY_GUARD = """
CREATE FUNCTION guard_balance() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    IF current_setting('request.jwt.claim.role', true) IN ('anon', 'authenticated')
       AND NEW.vibe_assistant_tokens_remaining > OLD.vibe_assistant_tokens_remaining THEN
        RAISE EXCEPTION 'balances are changed by the server only';
    END IF;
    RETURN NEW;
END $$
"""
CLAIMS_GUARD = LEGACY_GUARD.replace(
    "current_setting('request.jwt.claim.role', true)",
    "current_setting('request.jwt.claims', true)::jsonb ->> 'role'",
)
GUARD_TRIGGER = (
    "CREATE TRIGGER guard_balance BEFORE UPDATE ON user_profiles"
    " FOR EACH ROW EXECUTE FUNCTION guard_balance()"
)


def test_a_guard_reading_the_legacy_claim_settings_is_open_and_named(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(OWN_UPDATE)
    conn.execute(LEGACY_GUARD)
    conn.execute(GUARD_TRIGGER)
    # PostgREST 10+ never sets request.jwt.claim.role: the guard lets the raise through.
    assert raise_balance(conn, "authenticated", users.owner, users.owner)
    checks = doctor(cli)
    check = checks["api_role_authenticated"]
    assert check["status"] == "fail"
    assert "their own balance" in check["message"]
    assert "touched 1 row and took effect" in check["message"]
    legacy = checks["legacy_jwt_settings"]
    assert legacy["status"] == "fail"
    assert "guard_balance()" in legacy["message"]
    assert "request.jwt.claim.role" in legacy["message"]
    assert "request.jwt.claims" in legacy["fix"]


def test_a_guard_reading_request_jwt_claims_protects(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(OWN_UPDATE)
    conn.execute(CLAIMS_GUARD)
    conn.execute(GUARD_TRIGGER)
    assert not raise_balance(conn, "authenticated", users.owner, users.owner)
    checks = doctor(cli)
    assert checks["api_role_authenticated"]["status"] == "ok"
    assert (
        "refused by trigger function guard_balance()"
        in (checks["api_role_authenticated"]["message"])
    )
    assert checks["legacy_jwt_settings"]["status"] == "ok"


def test_the_probe_sets_exactly_postgrests_request_settings(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # A trigger that records what the request looked like, into a table of its own.
    conn.execute(OWN_UPDATE)
    conn.execute(
        "CREATE TABLE seen (method text, path text, role text, aud text, legacy text,"
        " headers jsonb, cookies jsonb)"
    )
    conn.execute(
        "CREATE FUNCTION record_request() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
        " SET search_path = public AS $$ BEGIN INSERT INTO seen VALUES ("
        " current_setting('request.method', true), current_setting('request.path', true),"
        " current_setting('request.jwt.claims', true)::jsonb ->> 'role',"
        " current_setting('request.jwt.claims', true)::jsonb ->> 'aud',"
        " current_setting('request.jwt.claim.sub', true),"
        " current_setting('request.headers', true)::jsonb,"
        " current_setting('request.cookies', true)::jsonb);"
        " RAISE EXCEPTION 'seen: %', (SELECT row_to_json(s) FROM seen AS s LIMIT 1); END $$"
    )
    conn.execute(
        "CREATE TRIGGER record_request BEFORE UPDATE ON user_profiles"
        " FOR EACH ROW EXECUTE FUNCTION record_request()"
    )
    message = doctor(cli)["api_role_authenticated"]["message"]
    assert '"method":"PATCH"' in message and '"path":"/user_profiles"' in message
    assert '"role":"authenticated"' in message and '"aud":"authenticated"' in message
    assert '"legacy":null' in message or '"legacy":""' in message
    assert '"cookies":{}' in message and '"content-type"' in message


# --- 3. INSERT, and DELETE then INSERT, on the balance table ---


def test_an_insert_policy_without_an_insert_guard_lets_a_new_user_post_a_balance(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(OWN_INSERT)
    conn.execute(CLAIMS_GUARD)
    conn.execute(GUARD_TRIGGER)  # the guard fires on UPDATE only
    newcomer = uuid.uuid4()
    conn.execute("INSERT INTO auth.users (id) VALUES (%s)", (newcomer,))
    assert post_profile(conn, "authenticated", newcomer, newcomer)
    assert not raise_balance(conn, "authenticated", users.owner, users.owner)
    check = doctor(cli)["api_role_authenticated"]
    assert check["status"] == "fail"
    assert "can POST a new balance row with 1,000,000 tokens" in check["message"]
    assert 'REVOKE INSERT ON "user_profiles" FROM "authenticated"' in check["fix"]
    assert "unverified" not in check["fix"]
    apply_fix(conn, check["fix"])
    assert not post_profile(conn, "authenticated", newcomer, newcomer)


def test_a_guard_on_insert_and_update_protects_every_write_path(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(OWN_UPDATE)
    conn.execute(OWN_INSERT)
    conn.execute(OWN_DELETE)
    conn.execute(
        "CREATE FUNCTION guard_balance() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF current_user IN ('anon', 'authenticated') THEN"
        "   IF TG_OP = 'INSERT' THEN"
        "     NEW.vibe_assistant_tokens_remaining := 0; NEW.vibe_assistant_tokens_used := 0;"
        "   ELSE"
        "     NEW.vibe_assistant_tokens_remaining := OLD.vibe_assistant_tokens_remaining;"
        "     NEW.vibe_assistant_tokens_used := OLD.vibe_assistant_tokens_used;"
        "   END IF;"
        " END IF; RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER guard_balance BEFORE INSERT OR UPDATE ON user_profiles"
        " FOR EACH ROW EXECUTE FUNCTION guard_balance()"
    )
    newcomer = uuid.uuid4()
    conn.execute("INSERT INTO auth.users (id) VALUES (%s)", (newcomer,))
    assert not post_profile(conn, "authenticated", newcomer, newcomer)
    assert not delete_then_post(conn, users.owner)
    assert not raise_balance(conn, "authenticated", users.owner, users.owner)
    checks = doctor(cli)
    for role in ("anon", "authenticated"):
        assert checks[f"api_role_{role}"]["status"] == "ok", checks[f"api_role_{role}"]


def test_deleting_their_own_row_and_posting_it_again_raises_the_balance(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # Profiles reference auth.users: a made-up new user cannot POST one, but the owner can
    # delete theirs and POST it back.
    conn.execute(
        "ALTER TABLE user_profiles ADD CONSTRAINT profiles_user_fk FOREIGN KEY (user_id)"
        " REFERENCES auth.users (id)"
    )
    conn.execute(OWN_INSERT)
    conn.execute(OWN_DELETE)
    assert not post_profile(conn, "authenticated", (made_up := uuid.uuid4()), made_up)
    assert delete_then_post(conn, users.owner)
    check = doctor(cli)["api_role_authenticated"]
    assert check["status"] == "fail"
    assert "can DELETE their own balance row and POST it again" in check["message"]
    assert "higher touched 1 row and took effect" in check["message"]
    apply_fix(conn, check["fix"])
    assert not delete_then_post(conn, users.owner)


def test_an_api_role_owning_the_table_is_told_to_hand_it_over(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute("ALTER TABLE user_profiles OWNER TO authenticated")
    # An owner passes its own row-level security and keeps every privilege.
    assert raise_balance(conn, "authenticated", users.owner, users.other)
    newcomer = uuid.uuid4()
    assert post_profile(conn, "authenticated", newcomer, newcomer)
    check = doctor(cli)["api_role_authenticated"]
    assert check["status"] == "fail"
    assert check["fix"].startswith('ALTER TABLE "user_profiles" OWNER TO "postgres";')
    assert "unverified" not in check["fix"]
    apply_fix(conn, check["fix"])
    assert not raise_balance(conn, "authenticated", users.owner, users.other)
    assert not post_profile(conn, "authenticated", newcomer, newcomer)
    assert not delete_then_post(conn, users.owner)


def test_a_revoke_alone_is_never_printed_for_an_owner(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # The twin without ownership: the REVOKE is enough, and no ownership change is asked.
    conn.execute(OWN_UPDATE)
    check = doctor(cli)["api_role_authenticated"]
    assert check["status"] == "fail"
    assert check["fix"].startswith('REVOKE UPDATE ON "user_profiles" FROM "authenticated";')
    assert "OWNER TO" not in check["fix"]
    apply_fix(conn, check["fix"])
    assert not raise_balance(conn, "authenticated", users.owner, users.owner)


# --- 7. a raise is a raise ---


def test_a_guard_that_only_lets_the_balance_fall_is_not_a_hole(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(OWN_UPDATE)
    conn.execute(
        "CREATE FUNCTION clamp_balance() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF current_user IN ('anon', 'authenticated') THEN NEW.vibe_assistant_tokens_remaining"
        " := least(NEW.vibe_assistant_tokens_remaining, OLD.vibe_assistant_tokens_remaining);"
        " END IF; RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER clamp_balance BEFORE UPDATE ON user_profiles"
        " FOR EACH ROW EXECUTE FUNCTION clamp_balance()"
    )
    assert not raise_balance(conn, "authenticated", users.owner, users.owner)
    spent = attack(
        conn, "authenticated", users.owner,
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = 90,"
        " vibe_assistant_tokens_used = 10 WHERE user_id = %s", (users.owner,),
        then=REMAINING, then_params=(users.owner,),
    )  # fmt: skip
    assert spent.after == (90,)  # spending still works
    check = doctor(cli)["api_role_authenticated"]
    assert check["status"] == "ok"
    assert "the balance did not go up" in check["message"]


def test_a_clamp_on_used_alone_still_lets_the_balance_rise(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute(OWN_UPDATE)
    conn.execute(
        "CREATE FUNCTION clamp_used() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " NEW.vibe_assistant_tokens_used := greatest(NEW.vibe_assistant_tokens_used,"
        " OLD.vibe_assistant_tokens_used); RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER clamp_used BEFORE UPDATE ON user_profiles"
        " FOR EACH ROW EXECUTE FUNCTION clamp_used()"
    )
    assert raise_balance(conn, "authenticated", users.owner, users.owner)
    assert doctor(cli)["api_role_authenticated"]["status"] == "fail"


def test_a_column_grant_on_used_alone_raises_nothing(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    conn.execute("REVOKE UPDATE ON user_profiles FROM authenticated")
    conn.execute("GRANT UPDATE (vibe_assistant_tokens_used) ON user_profiles TO authenticated")
    conn.execute(OWN_UPDATE)
    assert not raise_balance(conn, "authenticated", users.owner, users.owner)
    check = doctor(cli)["api_role_authenticated"]
    assert check["status"] != "fail", check


def test_anon_whose_patch_reaches_no_row_does_not_fail(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # An own-row UPDATE policy for PUBLIC: anon holds the grant and the policy names it, but
    # auth.uid() is NULL for anon, so no row is ever reached, with or without a filter.
    conn.execute(
        "CREATE POLICY own_update ON user_profiles FOR UPDATE USING (auth.uid() = user_id)"
    )
    assert raise_everyone(conn, "anon", None) == set()
    assert not raise_balance(conn, "anon", None, users.other)
    check = doctor(cli)["api_role_anon"]
    assert check["status"] == "ok", check
    assert "a PATCH without a filter touched 0 rows" in check["message"]


def test_anon_whose_patch_reaches_every_row_fails(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # The twin: an always-true UPDATE policy for anon, and no SELECT policy for it.
    conn.execute("CREATE POLICY anon_update ON user_profiles FOR UPDATE TO anon USING (true)")
    assert raise_everyone(conn, "anon", None) == {users.owner, users.other}
    check = doctor(cli)["api_role_anon"]
    assert check["status"] == "fail"
    assert "a PATCH without a filter reached a row" in check["message"]


def test_a_foreign_key_to_the_users_does_not_hide_an_insert_guard(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # A made-up new user breaks the foreign key (proves nothing); the owner's own row,
    # deleted and POSTed back, meets the same INSERT guard, which clamps it.
    conn.execute(
        "ALTER TABLE user_profiles ADD CONSTRAINT profiles_user_fk FOREIGN KEY (user_id)"
        " REFERENCES auth.users (id)"
    )
    conn.execute(OWN_INSERT)
    conn.execute(OWN_DELETE)
    conn.execute(
        "CREATE FUNCTION new_profile() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF current_user IN ('anon', 'authenticated') THEN"
        " NEW.vibe_assistant_tokens_remaining := 0; NEW.vibe_assistant_tokens_used := 0;"
        " END IF; RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER new_profile BEFORE INSERT ON user_profiles"
        " FOR EACH ROW EXECUTE FUNCTION new_profile()"
    )
    assert not delete_then_post(conn, users.owner)
    newcomer = uuid.uuid4()
    conn.execute("INSERT INTO auth.users (id) VALUES (%s)", (newcomer,))
    assert not post_profile(conn, "authenticated", newcomer, newcomer)
    check = doctor(cli)["api_role_authenticated"]
    assert check["status"] != "fail", check


# --- 6. a fix that cannot be tried is marked unverified ---


def test_a_fix_whose_lock_is_not_granted_at_once_is_marked_unverified(
    cli: CliRunner, conn: psycopg.Connection, db_url: str, users: Users
) -> None:
    # The app is reading the table: handing it to another owner needs a lock the app holds.
    conn.execute("ALTER TABLE user_profiles OWNER TO authenticated")
    with psycopg.connect(db_url) as app:
        app.execute("SELECT count(*) FROM user_profiles").fetchone()  # transaction left open
        check = doctor(cli)["api_role_authenticated"]
    assert check["status"] == "fail"
    assert check["fix"].startswith('ALTER TABLE "user_profiles" OWNER TO "postgres";')
    assert "(unverified: the lock it needs was not granted at once" in check["fix"]


def test_a_fix_the_tool_may_not_make_is_marked_unverified(
    cli: CliRunner, conn: psycopg.Connection, db_url: str, users: Users
) -> None:
    from psycopg.conninfo import make_conninfo

    from tests.support.builders import ensure_role

    conn.execute(OWN_UPDATE)
    ensure_role(conn, "tokenfix_doctor", "LOGIN BYPASSRLS")
    conn.execute("GRANT authenticated, anon, service_role TO tokenfix_doctor")
    conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO tokenfix_doctor")
    check = doctor(cli, "-d", make_conninfo(db_url, user="tokenfix_doctor"))[
        "api_role_authenticated"
    ]
    assert check["status"] == "fail"
    assert check["fix"].startswith('REVOKE UPDATE ON "user_profiles" FROM "authenticated";')
    assert "(unverified: the tool's role does not own user_profiles" in check["fix"]


def test_a_policy_reading_the_legacy_settings_locks_users_out_and_warns(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # A restrictive policy on the legacy setting: NULL under PostgREST 10+, so no update by
    # anyone gets through — broken for the app, but no hole.
    conn.execute(OWN_UPDATE)
    conn.execute(
        "CREATE POLICY server_only ON user_profiles AS RESTRICTIVE FOR UPDATE"
        " USING (current_setting('request.jwt.claim.role', true) = 'service_role')"
    )
    assert not raise_balance(conn, "authenticated", users.owner, users.owner)
    checks = doctor(cli)
    assert checks["api_role_authenticated"]["status"] != "fail", checks["api_role_authenticated"]
    legacy = checks["legacy_jwt_settings"]
    assert legacy["status"] == "warn"
    assert "policy server_only (on user_profiles) reads request.jwt.claim.role" in legacy["message"]


def test_anon_whose_delete_reaches_no_row_does_not_fail(
    cli: CliRunner, conn: psycopg.Connection, users: Users
) -> None:
    # Own-row DELETE and INSERT policies for PUBLIC: anon holds both grants and both policies
    # name it, but with no user its DELETE without a filter reaches no row, its POST none.
    conn.execute(
        "CREATE POLICY own_delete ON user_profiles FOR DELETE USING (auth.uid() = user_id)"
    )
    conn.execute(
        "CREATE POLICY own_insert ON user_profiles FOR INSERT WITH CHECK (auth.uid() = user_id)"
    )
    gone = attack(conn, "anon", None, "DELETE FROM user_profiles", method="DELETE")
    assert gone.error is None and gone.rows == 0
    assert not post_profile(conn, "anon", None, uuid.uuid4())
    check = doctor(cli)["api_role_anon"]
    assert check["status"] != "fail", check
