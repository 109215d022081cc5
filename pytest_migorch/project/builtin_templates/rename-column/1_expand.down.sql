SET lock_timeout = '5s';
DROP TRIGGER {sync} ON {table};
DROP FUNCTION {sync}();
ALTER TABLE {table} DROP COLUMN {to};
