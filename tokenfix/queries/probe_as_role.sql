-- Deferred constraints and constraint triggers run at the probe's statement, not at a commit
-- that never comes; then act as the API role until the savepoint is rolled back.
SET CONSTRAINTS ALL IMMEDIATE;
SET LOCAL ROLE {role}
