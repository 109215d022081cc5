-- Only the rows still NULL, so a rerun after a partial backfill is cheap. For a very large table
-- backfill in batches outside the deploy first; this then updates nothing.
-- A bound on the statement, so a table far bigger than expected fails fast instead of running on.
SET statement_timeout = '15min';
UPDATE {table} SET {column} = {value} WHERE {column} IS NULL;
