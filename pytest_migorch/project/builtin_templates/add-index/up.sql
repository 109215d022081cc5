-- CONCURRENTLY: writes go on while the index is built. It cannot run in a transaction, hence
-- "transactional": false. If it fails it leaves an INVALID index: drop it before retrying.
CREATE INDEX CONCURRENTLY {index} ON {table} ({column});
