-- Supabase's Data API roles present in this cluster: they must never reach the audit trail.
SELECT rolname FROM pg_roles WHERE rolname IN ('anon', 'authenticated') ORDER BY rolname
