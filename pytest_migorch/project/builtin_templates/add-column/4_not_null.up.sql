SET lock_timeout = '5s';
-- VALIDATE scans under SHARE UPDATE EXCLUSIVE: reads and writes go on.
ALTER TABLE {table} VALIDATE CONSTRAINT {constraint};
-- With a valid CHECK ({column} IS NOT NULL), PostgreSQL 12+ sets NOT NULL without a scan.
-- migorch:ignore RSK005
ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;
ALTER TABLE {table} DROP CONSTRAINT {constraint};
