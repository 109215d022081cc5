SET lock_timeout = '5s';
DROP TRIGGER {sync} ON {table};
DROP FUNCTION {sync}();
-- Dropping the old column is the point of this migration (declared high risk).
-- migorch:ignore RSK003
ALTER TABLE {table} DROP COLUMN {column};
