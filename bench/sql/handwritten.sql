-- The statement a DBA would write for the same drift list: classes as CASE sums, the
-- override found per row with a LATERAL ... ORDER BY ... LIMIT 1 subquery.
set work_mem = '64MB';
with ledger as (
    select u.user_id,
           sum(case when u.success and u.tokens_used > 0 and u.action_type = 'admin_grant'
                    then u.tokens_used else 0 end) as granted,
           sum(case when u.success and u.tokens_used > 0 and u.action_type = 'admin_deduct'
                    then u.tokens_used else 0 end) as deducted,
           sum(case when u.success and u.tokens_used > 0
                     and u.action_type not in ('admin_grant', 'admin_deduct')
                    then coalesce(o.token_cost, u.tokens_used) else 0 end) as charged
    from token_usage as u
    left join lateral (
        select o.token_cost
        from ai_action_token_overrides as o
        where o.is_active
          and o.action_type = u.action_type
          and u.action_type not in ('admin_grant', 'admin_deduct')
          and (o.model_used is null or o.model_used = u.model_used)
          and (o.valid_from is null or u.created_at >= o.valid_from)
          and (o.valid_until is null or u.created_at < o.valid_until)
        order by o.model_used is not null desc, o.valid_from desc nulls last, o.id desc
        limit 1
    ) as o on true
    group by u.user_id
)
select coalesce(l.user_id, p.user_id) as user_id,
       p.vibe_assistant_tokens_remaining, p.vibe_assistant_tokens_used,
       :starting_balance + coalesce(l.granted, 0) - coalesce(l.deducted, 0)
           - coalesce(l.charged, 0) as expected_remaining,
       coalesce(l.charged, 0) as expected_used
from ledger as l
full join user_profiles as p on p.user_id = l.user_id
where p.user_id is null
   or p.vibe_assistant_tokens_remaining
      <> :starting_balance + coalesce(l.granted, 0) - coalesce(l.deducted, 0) - coalesce(l.charged, 0)
   or p.vibe_assistant_tokens_used <> coalesce(l.charged, 0);
