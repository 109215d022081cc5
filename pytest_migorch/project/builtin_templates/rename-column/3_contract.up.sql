SET lock_timeout = '5s';
DROP TRIGGER {sync} ON {table};
-- migorch:ignore RSK030 only the trigger dropped above used it
DROP FUNCTION {sync}();
-- Dropping the old column is the point of this migration (declared high risk).
-- migorch:ignore RSK003 the old column is unused once code reads the new one
ALTER TABLE {table} DROP COLUMN {column};
