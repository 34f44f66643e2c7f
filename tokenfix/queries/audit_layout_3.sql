-- Audit layout 3 (additive): support adjustments (`tokenfix grant` / `deduct`, `reconcile
-- --direction ledger`). A change row that booked a ledger row keeps it in `adjustment`: the
-- [[ledger]] and table it went to, the row as the database stored it, the kind, the amount,
-- the reason and the idempotency key; so `revert` can delete exactly that row, and a retried
-- command with the same idempotency key finds it and books nothing.
ALTER TABLE {schema}.changes ADD COLUMN IF NOT EXISTS adjustment jsonb;
CREATE INDEX IF NOT EXISTS changes_idempotency_idx
    ON {schema}.changes ((adjustment ->> 'idempotency_key'))
    WHERE adjustment IS NOT NULL;
