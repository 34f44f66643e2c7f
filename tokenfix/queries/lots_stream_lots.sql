-- lots_stream.sql's rows of one [[lots]] source, as the mapping reads them (an invalid lot,
-- amount NULL or <= 0 or no time, is left for the fold to ignore). A lot is recent when it
-- became spendable inside the settle window: one scheduled for later is not activity.
SELECT 1, {key}, ({at})::timestamptz, {source_name}::text, ({id})::text, ({amount})::numeric,
       NULL::integer, ({expires_at})::timestamptz, ({voided_at})::timestamptz,
       ({priority})::numeric, coalesce(({at})::timestamptz > {recent}
                AND ({at})::timestamptz <= statement_timestamp(), false),
       NULL::numeric, NULL::numeric, NULL::numeric, NULL::numeric
FROM {table}
WHERE {where} AND {selection}
