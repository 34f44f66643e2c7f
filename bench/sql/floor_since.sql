-- The floor of --since 1h (docs/performance.md): the recently active users' whole history, summed per user,
-- through the index (the array from an init plan, as the tool reads it), nothing else.
set work_mem = '64MB';
select user_id, sum(tokens_used), count(*) from token_usage
where user_id = any(array(select distinct user_id from token_usage
                          where created_at >= now() - interval '1 hour'))
group by user_id;
