SET lock_timeout = '5s';
ALTER TABLE {table} DROP COLUMN {column};
