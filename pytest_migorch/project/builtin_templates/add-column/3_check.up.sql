SET lock_timeout = '5s';
-- NOT VALID: existing rows are not scanned now, so the lock is brief.
ALTER TABLE {table} ADD CONSTRAINT {constraint} CHECK ({column} IS NOT NULL) NOT VALID;
