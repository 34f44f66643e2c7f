-- Expected balances (docs/balance-model.md, docs/mapping.md) of a selection of owners beside their cached rows. Each
-- ledger source is read in one pass and summed per owner (a hash aggregate), the sources are
-- combined by owner, then full-joined with the balance rows, so that owners with a balance
-- row but no ledger rows are checked too. `attention`: a status other than ok (a NULL cache
-- is drift; a drift within the mapping's tolerance is not). Each owner also carries the
-- evidence its causes are tested against (docs/monitoring.md), summed by the same aggregate:
-- its starting balance, grants, deducts, override difference, failed charges, and `early`
-- (a ledger row older than its balance row).
WITH {sources}, ledger AS (
{ledger}
), cached AS (
    SELECT balance.{key} AS key, {remaining} AS remaining, {used} AS used, {starting} AS starting,
           {tolerance} AS tolerance, {row_id} AS row_id, {created_at} AS created_at
    FROM {balance} AS balance
    WHERE {balance_where} AND {balance_selection}
), expected AS (
    SELECT coalesce(l.key, c.key) AS key,
           c.key IS NOT NULL AS has_profile,
           c.remaining AS current_remaining,
           c.used AS current_used,
           coalesce(c.starting, %(starting_balance)s::numeric) + coalesce(l.remaining_delta, 0)
               AS expected_remaining,
           coalesce(l.charged, 0) AS expected_used,
           coalesce(c.tolerance, 0) AS tolerance,
           c.row_id,
           coalesce(c.starting, %(starting_balance)s::numeric) AS starting,
           coalesce(l.granted, 0) AS granted,
           coalesce(l.granted, 0) - coalesce(l.charged, 0) - coalesce(l.remaining_delta, 0)
               AS deducted,
           coalesce(l.charged, 0) - coalesce(l.raw_charged, 0) AS override_difference,
           coalesce(l.failed, 0) AS failed_charge_tokens,
           coalesce(l.failed_priced, 0) AS failed_charge_tokens_priced,
           coalesce(l.first_at < c.created_at, false) AS early
    FROM ledger AS l
    FULL JOIN cached AS c ON c.key = l.key
)
SELECT e.key, e.has_profile, e.current_remaining, e.current_used,
       e.expected_remaining, e.expected_used,
       e.current_remaining - e.expected_remaining AS drift_remaining,
       e.current_used - e.expected_used AS drift_used,
       NOT e.has_profile OR {remaining_off} OR {used_off} AS attention,
       e.row_id, e.starting, e.granted, e.deducted, e.override_difference,
       e.failed_charge_tokens, e.failed_charge_tokens_priced, e.early
FROM expected AS e
