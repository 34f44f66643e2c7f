"""Every command against a Citus coordinator with two workers (docs/citus.md): the seed's tables
distributed by owner with sql/citus/distribute.sql, 2,000 users and 100,000 ledger rows from the
benchmark's generator. Skips, saying how to build Citus, where the extension is not installed;
`make test-citus` runs only these."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql
import pytest

from bench.generate import generate
from tests.support.citus import CitusCluster
from tests.support.clirunner import CliRunner, Result
from tokenfix.config.settings import Settings
from tokenfix.ledger.model import Selection
from tokenfix.ledger.model import load as load_model
from tokenfix.reconciliation.plan import Request, pass_statement, plan

pytestmark = [pytest.mark.citus, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTE = ROOT / "sql" / "citus" / "distribute.sql"
HANDWRITTEN = ROOT / "bench" / "sql" / "handwritten.sql"
USERS, ROWS, STARTING = 2000, 100_000, 1000


@pytest.fixture(scope="module")
def plain_url(cluster: CitusCluster) -> Iterator[str]:
    """The same data on the coordinator, not distributed: what one server says."""
    url = cluster.create_database("tf_plain")
    generate(url, users=USERS, rows=ROWS, log=lambda *_: None)
    yield url
    cluster.drop_database("tf_plain")


@pytest.fixture(scope="module")
def citus_url(cluster: CitusCluster) -> Iterator[str]:
    url = cluster.create_database("tf_citus")
    generate(url, users=USERS, rows=ROWS, log=lambda *_: None)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DISTRIBUTE.read_text())
    yield url
    cluster.drop_database("tf_citus")


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    runner = CliRunner(capsys)

    def on(url: str, *args: str) -> Result:
        monkeypatch.setenv("TOKENFIX_DATABASE_URL", url)
        monkeypatch.setenv("TOKENFIX_STARTING_BALANCE", str(STARTING))
        return runner(*args)

    yield on


def handwritten_drift(url: str) -> list[tuple[Any, ...]]:
    text = HANDWRITTEN.read_text().replace(":starting_balance", "%(starting_balance)s")
    with psycopg.connect(url, autocommit=True) as conn:
        *settings, query = [s for s in text.split(";\n") if s.strip()]
        for statement in settings:
            conn.execute(statement)
        rows = conn.execute(query, {"starting_balance": STARTING}).fetchall()
    return sorted((str(r[0]), r[1], r[2], r[3], r[4]) for r in rows)


def dry_run(run: Any, url: str, *args: str) -> dict[str, Any]:
    done = run(url, "reconcile", *args, "--dry-run", "--json")
    assert done.exit_code in (0, 1), done.stderr
    report: dict[str, Any] = done.json()
    return report


def test_the_distribution_script_distributes_by_owner_and_co_locates(citus_url: str) -> None:
    with psycopg.connect(citus_url) as conn:
        rows = conn.execute(
            "SELECT logicalrelid::text, partmethod::text, colocationid FROM pg_dist_partition"
            " ORDER BY 1"
        ).fetchall()
    placed = {name: (method, group) for name, method, group in rows}
    assert placed["ai_action_token_overrides"][0] == "n"
    assert placed["token_usage"][0] == placed["user_profiles"][0] == "h"
    assert placed["token_usage"][1] == placed["user_profiles"][1]


def test_doctor_names_citus_and_finds_the_distribution_right(run: Any, citus_url: str) -> None:
    done = run(citus_url, "doctor", "--json")
    checks = {c["name"]: c for c in done.json()["checks"]}
    assert checks["citus"]["status"] == "ok", checks["citus"]
    assert "user_profiles" in checks["citus"]["message"]
    assert done.exit_code in (0, 1), done.stderr
    assert [c for c in checks.values() if c["status"] == "fail"] == []


def test_init_drafts_the_mapping_from_the_coordinators_catalogs(run: Any, citus_url: str) -> None:
    done = run(citus_url, "init")
    assert done.exit_code == 0, done.stderr
    assert 'table = "user_profiles"' in done.stdout and 'table = "token_usage"' in done.stdout


def test_a_dry_run_finds_what_one_server_and_a_handwritten_statement_find(
    run: Any, citus_url: str, plain_url: str
) -> None:
    on_citus = dry_run(run, citus_url, "--all")
    on_one_server = dry_run(run, plain_url, "--all")
    assert on_citus["users_with_drift"] == 20
    assert on_citus["changes"] == on_one_server["changes"]
    assert on_citus["summary"] == on_one_server["summary"]
    drifting = {c["user_id"] for c in on_citus["changes"]}
    assert drifting == {row[0] for row in handwritten_drift(citus_url)}


def test_recent_owners_and_their_order_match_one_server(
    run: Any, citus_url: str, plain_url: str
) -> None:
    """Within a two days' settle window about a quarter of the drifting owners have recent
    ledger rows (the generator's rows end a day ago): the same owners deferred, the others not,
    in the same order, as on one server (before any test writes)."""
    on_citus = dry_run(run, citus_url, "--all", "--settle", "2d")
    on_one_server = dry_run(run, plain_url, "--all", "--settle", "2d")
    assert on_citus["changes"] == on_one_server["changes"]
    assert on_citus["summary"] == on_one_server["summary"]
    keys = [c["user_id"] for c in on_citus["changes"]]
    assert keys == sorted(keys)  # uuid order is the text order of their lowercase hex
    deferred = [c.get("skipped") == "recent_activity" for c in on_citus["changes"]]
    assert any(deferred) and not all(deferred)


def test_one_owner_a_list_and_since_dry_runs_work(run: Any, citus_url: str, plain_url: str) -> None:
    everyone = dry_run(run, citus_url, "--all")
    keys = [c["user_id"] for c in everyone["changes"]][:5]
    one = dry_run(run, citus_url, keys[0])
    assert [c["user_id"] for c in one["changes"]] == keys[:1]
    listed = dry_run(run, citus_url, *keys)
    assert [c["user_id"] for c in listed["changes"]] == keys
    recent = dry_run(run, citus_url, "--all", "--since", "30d")
    assert recent["changes"] == dry_run(run, plain_url, "--all", "--since", "30d")["changes"]
    unknown = run(citus_url, "reconcile", "00000000-0000-0000-0000-000000000001", "--dry-run")
    assert unknown.exit_code == 2 and "unknown user" in unknown.stderr
    # The two databases were generated seconds apart: times differ, amounts and counts do not.
    timeless = ("status", "expected", "drift", "overdrawn", "causes")
    diagnosed = run(citus_url, "diagnose", keys[0], "--json").json()
    alone = run(plain_url, "diagnose", keys[0], "--json").json()
    assert {k: diagnosed[k] for k in timeless} == {k: alone[k] for k in timeless}
    counts = {k: v for k, v in diagnosed["usage"].items() if not k.endswith("_activity")}
    assert counts == {k: v for k, v in alone["usage"].items() if not k.endswith("_activity")}


def test_a_write_converges_and_its_revert_brings_the_same_drift_back(
    run: Any, citus_url: str
) -> None:
    before = dry_run(run, citus_url, "--all")
    written = run(citus_url, "reconcile", "--all", "--create-missing", "--yes", "--json")
    assert written.exit_code == 0, written.stderr
    report = written.json()
    assert report["users_updated"] == before["users_with_drift"]
    assert report["profiles_created"] == before["missing_profiles"]
    after = dry_run(run, citus_url, "--all")
    assert after["users_with_drift"] == 0 and after["missing_profiles"] == 0
    assert handwritten_drift(citus_url) == []

    history = run(citus_url, "history", "--json").json()["runs"]
    assert history[0]["run_id"] == report["run_id"]
    reverted = run(citus_url, "revert", report["run_id"], "--yes")
    assert reverted.exit_code == 0, reverted.stderr
    again = dry_run(run, citus_url, "--all")
    assert again["changes"] == before["changes"]


def test_grant_and_deduct_book_through_the_ledger(run: Any, citus_url: str) -> None:
    with psycopg.connect(citus_url) as conn:
        row = conn.execute("SELECT user_id::text FROM user_profiles ORDER BY 1 LIMIT 1").fetchone()
    assert row is not None
    owner = row[0]
    before = run(citus_url, "diagnose", owner, "--json").json()
    granted = run(citus_url, "grant", owner, "100", "--reason", "citus test", "--yes", "--json")
    assert granted.exit_code == 0, granted.stderr
    deducted = run(citus_url, "deduct", owner, "30", "--reason", "citus test", "--yes")
    assert deducted.exit_code == 0, deducted.stderr
    after = run(citus_url, "diagnose", owner, "--json").json()
    remaining = after["profile"]["tokens_remaining"] - before["profile"]["tokens_remaining"]
    assert remaining == 70
    assert after["drift"] == before["drift"]
    # The grant's revert deletes the ledger row it booked (on the shard holding it) and moves
    # the cache back.
    reverted = run(citus_url, "revert", granted.json()["run_id"], "--yes")
    assert reverted.exit_code == 0, reverted.stderr
    back = run(citus_url, "diagnose", owner, "--json").json()
    assert back["profile"]["tokens_remaining"] - before["profile"]["tokens_remaining"] == -30
    assert back["usage"]["grant_records"] == before["usage"]["grant_records"]
    assert back["drift"] == before["drift"]


def test_the_audit_lives_on_the_coordinator(citus_url: str) -> None:
    with psycopg.connect(citus_url) as conn:
        distributed = conn.execute(
            "SELECT count(*) FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'tokenfix'"
        ).fetchone()
        changes = conn.execute("SELECT count(*) FROM tokenfix.changes").fetchone()
    assert distributed == (0,)
    assert changes is not None and changes[0] > 0


def test_doctor_fails_a_distribution_tokenfix_cannot_work_with_naming_the_call(
    run: Any, cluster: CitusCluster
) -> None:
    url = cluster.create_database("tf_wrong")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute((ROOT / "sql" / "schema.sql").read_text())
            conn.execute("ALTER TABLE token_usage DROP CONSTRAINT token_usage_pkey")
            conn.execute("SELECT create_distributed_table('user_profiles', 'user_id')")
            conn.execute(
                "SELECT create_distributed_table('token_usage', 'user_id', colocate_with => 'none',"
                " shard_count => 3)"
            )
        done = run(url, "doctor", "--json")
        failed = [c for c in done.json()["checks"] if c["name"] == "citus"]
        assert done.exit_code == 3
        assert [c["status"] for c in failed] == ["fail", "fail"]
        ledger, prices = failed
        assert "token_usage" in ledger["message"] and "co-located" in ledger["message"]
        assert ledger["fix"] == (
            "SELECT undistribute_table('token_usage'); SELECT create_distributed_table("
            "'token_usage', 'user_id', colocate_with => 'user_profiles');"
        )
        assert "ai_action_token_overrides" in prices["message"]
        assert prices["fix"] == "SELECT create_reference_table('ai_action_token_overrides');"
    finally:
        cluster.drop_database("tf_wrong")


def test_the_all_owners_pass_sums_each_shards_owners_on_that_shard(citus_url: str) -> None:
    settings = Settings.model_validate({"database_url": citus_url, "starting_balance": STARTING})
    with psycopg.connect(citus_url, autocommit=True) as conn:
        model = load_model(conn, settings)
        assert model.sharded
        statement, params = model.with_recent("candidates", Selection(), timedelta(0))
        explain = psycopg.sql.SQL("EXPLAIN {}").format(statement)
        plan = [str(row[0]) for row in conn.execute(explain, params).fetchall()]
    scans = [i for i, line in enumerate(plan) if "Seq Scan on token_usage_" in line]
    assert scans, "\n".join(plan)
    for at in scans:
        depth = len(plan[at]) - len(plan[at].lstrip())
        parent = next(
            line for line in reversed(plan[:at]) if len(line) - len(line.lstrip()) < depth
        )
        assert "Aggregate" in parent, "\n".join(plan)


def test_the_pass_reads_the_comparison_once_where_it_is_summed(citus_url: str) -> None:
    """The owners' comparison is summed and filtered on the shards and combined on the
    coordinator (array_agg's arrays concatenated): it never becomes an intermediate result of
    every owner that the coordinator reads twice (the candidates, then the totals)."""
    settings = Settings.model_validate({"database_url": citus_url, "starting_balance": STARTING})
    with psycopg.connect(citus_url, autocommit=True) as conn:
        model = load_model(conn, settings)
        statement, params = pass_statement(model, Request(selection=Selection()))
        explain = psycopg.sql.SQL("EXPLAIN (VERBOSE) {}").format(statement)
        plan = "\n".join(str(row[0]) for row in conn.execute(explain, params).fetchall())
    assert "array_cat_agg" in plan, plan
    # the combined aggregate (one row) and the settle window's owners, nothing else
    assert plan.count("Distributed Subplan") == 2, plan


def test_each_ledger_rows_class_and_price_are_computed_once_on_the_shards(
    citus_url: str,
) -> None:
    """The pass's aggregate reads each row's class and price as the scan computed them, once
    a row: not the class's CASE inlined into every FILTER of the aggregate (seven times a
    row) as a subquery without a fence is (docs/citus.md)."""
    plan = _verbose_plan_of_the_pass(citus_url)
    scans = [at for at, line in enumerate(plan) if "Seq Scan on public.token_usage_" in line]
    assert scans, "\n".join(plan)
    for at in scans:
        output = plan[at + 1]
        assert output.strip().startswith("Output:"), "\n".join(plan)
        # the scan computes the class (its CASE names the grant action twice: a counted row,
        # a failed one) and the price; the aggregate above reads them as columns
        assert output.count("'admin_grant'") == 2, "\n".join(plan)
        assert "'image_generation'" in output, "\n".join(plan)


def _verbose_plan_of_the_pass(citus_url: str) -> list[str]:
    """EXPLAIN (VERBOSE) of the all-owners pass, line by line."""
    settings = Settings.model_validate({"database_url": citus_url, "starting_balance": STARTING})
    with psycopg.connect(citus_url, autocommit=True) as conn:
        model = load_model(conn, settings)
        statement, params = pass_statement(model, Request(selection=Selection()))
        explain = psycopg.sql.SQL("EXPLAIN (VERBOSE) {}").format(statement)
        return [str(row[0]) for row in conn.execute(explain, params).fetchall()]


def test_each_owners_comparison_is_computed_once_on_the_shards(citus_url: str) -> None:
    """Each owner's comparison (expected balances, drift, whether it needs attention) is
    computed once, by the join of its sums to its balance row, and read as columns by the
    aggregate that combines the shard's owners: not inlined into every array_agg's FILTER."""
    plan = _verbose_plan_of_the_pass(citus_url)
    joins = [at for at, line in enumerate(plan) if "Hash Full Join" in line]
    assert joins, "\n".join(plan)
    for at in joins:
        output = plan[at + 1]
        assert output.strip().startswith("Output:"), "\n".join(plan)
        assert "abs(" in output, "\n".join(plan)  # the drift against the tolerance


def test_the_pass_runs_on_the_workers_with_the_tools_work_mem(citus_url: str) -> None:
    """The tool's work_mem reaches the shards' aggregates: each worker transaction of the pass
    begins with it (SET LOCAL, propagated by Citus), not only the coordinator's."""
    settings = Settings.model_validate(
        {"database_url": citus_url, "starting_balance": STARTING, "work_mem": "48MB"}
    )
    notices: list[str] = []
    with psycopg.connect(citus_url, autocommit=True) as conn:
        model = load_model(conn, settings)
        conn.execute("SET citus.log_remote_commands = on")
        conn.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
        plan(conn, model, Request(selection=Selection())).close()
    begins = [n for n in notices if n.startswith("issuing BEGIN")]
    assert begins, notices
    for begin in begins:
        assert "SET LOCAL work_mem = '48MB'" in begin, begin


def test_revert_leaves_a_created_profile_another_distributed_table_references(
    run: Any, citus_url: str
) -> None:
    written = run(citus_url, "reconcile", "--all", "--create-missing", "--yes", "--json")
    assert written.exit_code == 0, written.stderr
    run_id = written.json()["run_id"]
    created = sorted(
        c["user_id"] for c in written.json()["changes"] if c["status"] == "missing_profile"
    )
    assert created
    with psycopg.connect(citus_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE notes (user_id uuid NOT NULL REFERENCES user_profiles (user_id), note text)"
        )
        conn.execute(
            "SELECT create_distributed_table('notes', 'user_id', colocate_with => 'user_profiles')"
        )
        conn.execute("INSERT INTO notes VALUES (%s, 'kept')", (created[0],))
    try:
        reverted = run(citus_url, "revert", run_id, "--yes", "--json")
        assert reverted.exit_code == 1, reverted.stderr
        with psycopg.connect(citus_url) as conn:
            left = conn.execute(
                "SELECT user_id::text FROM user_profiles WHERE user_id = ANY(%s::uuid[])",
                (created,),
            ).fetchall()
        assert left == [(created[0],)]
    finally:
        with psycopg.connect(citus_url, autocommit=True) as conn:
            conn.execute("DROP TABLE notes")


def test_direction_ledger_books_the_drift_and_its_revert_takes_it_back(
    run: Any, citus_url: str
) -> None:
    drifting = [c for c in dry_run(run, citus_url, "--all")["changes"] if c["status"] == "drift"]
    owner = drifting[0]["user_id"]
    booked = run(citus_url, "reconcile", owner, "--direction", "ledger", "--reason", "t",
                 "--yes", "--json")  # fmt: skip
    assert booked.exit_code == 0, booked.stderr
    assert run(citus_url, "diagnose", owner, "--json").json()["status"] == "ok"
    reverted = run(citus_url, "revert", booked.json()["run_id"], "--yes")
    assert reverted.exit_code == 0, reverted.stderr
    assert run(citus_url, "diagnose", owner, "--json").json()["drift"] == drifting[0]["drift"]


WALLETS = ROOT / "examples" / "wallets"


@pytest.fixture(scope="module")
def wallets_url(cluster: CitusCluster) -> Iterator[str]:
    """examples/wallets distributed by wallet (balance `id`, ledger `wallet_id`, co-located),
    every cached balance zero: each wallet drifts."""
    url = cluster.create_database("tf_wallets")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((WALLETS / "schema.sql").read_text())
        conn.execute("ALTER TABLE wallet_transactions DROP CONSTRAINT wallet_transactions_pkey")
        conn.execute("ALTER TABLE wallet_transactions ADD PRIMARY KEY (wallet_id, id)")
        conn.execute("SELECT create_distributed_table('wallets', 'id')")
        conn.execute(
            "SELECT create_distributed_table('wallet_transactions', 'wallet_id',"
            " colocate_with => 'wallets')"
        )
        conn.execute(
            "INSERT INTO wallets (id, customer) SELECT g, 'c' || g FROM generate_series(1, 50) g"
        )
        conn.execute(
            "INSERT INTO wallet_transactions (wallet_id, credit_amount, direction,"
            " transaction_status, reason, created_at)"
            " SELECT 1 + g % 50, (g % 7) + 0.5, 1 + g % 3, CASE WHEN g % 11 = 0 THEN 2 ELSE 1 END,"
            " 'r', now() - interval '1 day' - g * interval '1 minute'"
            " FROM generate_series(1, 2000) AS g"
        )
    yield url
    cluster.drop_database("tf_wallets")


def test_through_a_mapping_file_on_citus(run: Any, wallets_url: str) -> None:
    mapping = ("--mapping", str(WALLETS / "tokenfix.toml"))
    doctor = run(wallets_url, "doctor", *mapping, "--json")
    checks = {c["name"]: c for c in doctor.json()["checks"]}
    assert checks["citus"]["status"] == "ok", checks["citus"]
    assert doctor.exit_code == 0, doctor.stdout
    before = dry_run(run, wallets_url, "--all", *mapping)
    assert before["users_with_drift"] == 50
    written = run(wallets_url, "reconcile", "--all", *mapping, "--yes", "--json")
    assert written.exit_code == 0, written.stderr
    assert dry_run(run, wallets_url, "--all", *mapping)["users_with_drift"] == 0
    reverted = run(wallets_url, "revert", written.json()["run_id"], *mapping, "--yes")
    assert reverted.exit_code == 0, reverted.stderr
    assert dry_run(run, wallets_url, "--all", *mapping)["changes"] == before["changes"]
    granted = run(wallets_url, "grant", "3", "10", "--reason", "t", *mapping, "--yes", "--json")
    assert granted.exit_code == 0, granted.stderr
    undone = run(wallets_url, "revert", granted.json()["run_id"], *mapping, "--yes")
    assert undone.exit_code == 0, undone.stderr
    unknown = run(wallets_url, "reconcile", "1", "999", "--dry-run", *mapping)
    assert unknown.exit_code == 2 and "999" in unknown.stderr


# An owner in step whose cache missed its grants: the drift is exactly the granted tokens.
MISSED_GRANTS = """
UPDATE user_profiles AS p SET vibe_assistant_tokens_remaining =
    p.vibe_assistant_tokens_remaining - g.granted
FROM (SELECT user_id, sum(tokens_used) AS granted FROM token_usage
      WHERE action_type = 'admin_grant' AND tokens_used > 0 AND success GROUP BY user_id) AS g
WHERE p.user_id = g.user_id AND p.user_id = %s
"""


def test_the_causes_on_citus_are_the_causes_one_server_names(
    run: Any, citus_url: str, plain_url: str
) -> None:
    drifting = {c["user_id"] for c in dry_run(run, citus_url, "--all")["changes"]}
    with psycopg.connect(citus_url) as conn:
        owners = conn.execute(
            "SELECT DISTINCT user_id::text FROM token_usage WHERE action_type = 'admin_grant'"
            " AND tokens_used > 0 AND success ORDER BY 1 LIMIT 20"
        ).fetchall()
    owner = next(o for (o,) in owners if o not in drifting)
    for url in (citus_url, plain_url):
        with psycopg.connect(url) as conn:
            conn.execute(MISSED_GRANTS, (owner,))
    on_citus = dry_run(run, citus_url, owner)["changes"]
    on_one_server = dry_run(run, plain_url, owner)["changes"]
    assert on_citus[0]["causes"] == on_one_server[0]["causes"] == ["grants_not_applied"]
    everyone = {c["user_id"]: c for c in dry_run(run, citus_url, "--all")["changes"]}
    assert everyone[owner]["causes"] == ["grants_not_applied"]
