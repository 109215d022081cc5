-- The legacy status column was replaced by orders.status. Its data is gone after this
-- migration, so there is deliberately no down migration ("reversible": false), and the
-- migration is declared "high" risk in dependencies.json.
SET lock_timeout = '5s';

-- migorch:ignore RSK003 no code has read legacy_status since release 2.3
ALTER TABLE orders DROP COLUMN legacy_status;
