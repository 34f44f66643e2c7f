-- The evidence the likely causes (SPEC §4) are tested against, for a batch of drifting owners
-- at once (SPEC §12): their rows read by each source's key index, summed per owner, and the
-- latest time from which their charges add up to exactly their remaining drift.
WITH classified AS (
{classified}
), drifts AS (
    SELECT d.owner, d.drift_remaining, d.drift_used, b.created_at,
           coalesce(b.starting, %(starting_balance)s::numeric) AS starting
    FROM unnest(%(keys)s::text[], %(drift_remaining)s::text[]::numeric[],
                %(drift_used)s::text[]::numeric[])
        AS d (owner, drift_remaining, drift_used)
    LEFT JOIN (
        SELECT balance.{key}::text AS owner, {created_at} AS created_at, {starting} AS starting
        FROM {balance} AS balance
        WHERE balance.{key} = ANY(%(keys)s::text[]::{key_type}[]) AND {where}
    ) AS b ON b.owner = d.owner
), evidence AS (
    SELECT c.owner,
        coalesce(sum(c.amount) FILTER (WHERE c.class = 'grant'), 0) AS granted,
        coalesce(sum(c.amount) FILTER (WHERE c.class = 'deduct'), 0) AS deducted,
        count(*) FILTER (WHERE c.class = 'charge' AND c.price IS NOT NULL) AS override_records,
        coalesce(sum(c.price - c.amount) FILTER (WHERE c.class = 'charge' AND c.price IS NOT NULL),
                 0) AS override_difference,
        count(*) FILTER (WHERE c.at < d.created_at) AS before_profile_records,
        coalesce(sum(c.amount) FILTER (WHERE c.class = 'grant' AND c.at < d.created_at), 0)
          - coalesce(sum(c.amount) FILTER (WHERE c.class = 'deduct' AND c.at < d.created_at), 0)
          - coalesce(sum(coalesce(c.price, c.amount))
                     FILTER (WHERE c.class = 'charge' AND c.at < d.created_at), 0)
            AS before_profile_remaining,
        coalesce(sum(coalesce(c.price, c.amount))
                 FILTER (WHERE c.class = 'charge' AND c.at < d.created_at), 0)
            AS before_profile_used,
        coalesce(sum(c.amount)
                 FILTER (WHERE c.class = 'failed' AND c.kind = 'charge' AND c.amount > 0), 0)
            AS failed_charge_tokens,
        coalesce(sum(coalesce(c.price, c.amount))
                 FILTER (WHERE c.class = 'failed' AND c.kind = 'charge' AND c.amount > 0), 0)
            AS failed_charge_tokens_priced
    FROM classified AS c
    JOIN drifts AS d ON d.owner = c.owner
    GROUP BY c.owner
), suffix AS (
    SELECT c.owner, c.at,
           count(*) OVER newest_first AS charges,
           sum(coalesce(c.price, c.amount)) OVER newest_first AS tokens
    FROM classified AS c
    JOIN drifts AS d ON d.owner = c.owner
    WHERE c.class = 'charge' AND d.drift_remaining > 0
      AND (d.drift_used IS NULL OR d.drift_used = -d.drift_remaining)
    WINDOW newest_first AS (PARTITION BY c.owner ORDER BY c.at DESC, c.source DESC, c.id DESC
                            ROWS UNBOUNDED PRECEDING)
), stopped AS (
    SELECT DISTINCT ON (s.owner) s.owner, s.at, s.charges, s.tokens
    FROM suffix AS s
    JOIN drifts AS d ON d.owner = s.owner
    WHERE s.tokens = d.drift_remaining
    ORDER BY s.owner, s.at DESC
)
SELECT d.owner, d.drift_remaining, d.drift_used, d.starting,
       coalesce(e.granted, 0), coalesce(e.deducted, 0), coalesce(e.override_records, 0),
       coalesce(e.override_difference, 0), coalesce(e.before_profile_records, 0),
       coalesce(e.before_profile_remaining, 0), coalesce(e.before_profile_used, 0),
       coalesce(e.failed_charge_tokens, 0), coalesce(e.failed_charge_tokens_priced, 0),
       s.at, s.charges, s.tokens
FROM drifts AS d
LEFT JOIN evidence AS e ON e.owner = d.owner
LEFT JOIN stopped AS s ON s.owner = d.owner
