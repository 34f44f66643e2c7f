-- Back to the tool's own role (still inside the probe's savepoint) to read what the probe
-- left behind, whatever the API role may read.
RESET ROLE
