-- The legacy status column was replaced by orders.status. Its data is gone after this
-- migration, so there is deliberately no down migration ("reversible": false).
SET lock_timeout = '5s';

ALTER TABLE orders DROP COLUMN legacy_status;
