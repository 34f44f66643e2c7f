-- The floor of a two-source mapping (docs/performance.md): a bare GROUP BY key over each source, one
-- sequential scan and one hash aggregate each, nothing else.
set work_mem = '64MB';
select user_id, sum(tokens_used), count(*) from token_usage group by user_id;
select user_id, sum(amount), count(*) from credit_transactions group by user_id;
