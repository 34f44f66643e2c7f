-- revert --dry-run: what revert would do now with each audit row of a batch, by the same
-- rules (revert_plan.sql), read only: no lock taken, nothing written, so it runs on a standby.
WITH
\ir revert_plan.sql
SELECT pl.tf_key::text, pl.tf_action, pl.tf_reason, pl.tf_current
FROM decided AS pl
