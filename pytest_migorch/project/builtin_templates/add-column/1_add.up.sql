SET lock_timeout = '5s';
-- Nullable and without a default: a catalog-only change, however big the table.
ALTER TABLE {table} ADD COLUMN {column} {type};
