-- One owner's cached balance row, as the mapping reads it.
SELECT {remaining} AS tokens_remaining, {used} AS tokens_used,
       ({created_at})::timestamptz AS created_at, {updated_at} AS updated_at,
       {starting} AS starting, {tolerance} AS tolerance,
       ({period_start})::timestamptz AS period_start, ({period_end})::timestamptz AS period_end,
       ({period_length})::interval AS period_length
FROM {balance} AS balance
WHERE balance.{key} = %(key)s::text::{key_type} AND {where}
