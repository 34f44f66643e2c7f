-- How many ledger rows of one owner carry one action: read by the tool before a probe and
-- inside its savepoint after, to see whether a grant row stuck.
SELECT count(*) FROM {table} WHERE {key} = %(key)s AND {action} = %(action)s
