-- The physical floor (docs/performance.md): one sequential scan and one hash aggregate, nothing else.
set work_mem = '64MB';
select user_id, sum(tokens_used), count(*) from token_usage group by user_id;
