-- One owner's cached balance row, as the mapping reads it.
SELECT {remaining} AS tokens_remaining, {used} AS tokens_used,
       ({created_at})::timestamptz AS created_at, {updated_at} AS updated_at,
       {starting} AS starting, {tolerance} AS tolerance
FROM {balance} AS balance
WHERE balance.{key} = %(key)s::text::{key_type} AND {where}
