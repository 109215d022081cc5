SET lock_timeout = '5s';
SET statement_timeout = '15min';
-- Scans existing rows under SHARE UPDATE EXCLUSIVE: reads and writes go on.
ALTER TABLE {table} VALIDATE CONSTRAINT {constraint};
