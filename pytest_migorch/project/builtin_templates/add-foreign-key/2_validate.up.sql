SET lock_timeout = '5s';
-- Scans existing rows under SHARE UPDATE EXCLUSIVE: reads and writes go on.
ALTER TABLE {table} VALIDATE CONSTRAINT {constraint};
