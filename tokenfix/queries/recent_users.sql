ARRAY(SELECT DISTINCT r.user_id FROM {usage} AS r
      WHERE r.created_at > statement_timestamp() - %(settle)s::interval)
