SET lock_timeout = '5s';
ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL;
ALTER TABLE {table} ADD CONSTRAINT {constraint} CHECK ({column} IS NOT NULL) NOT VALID;
