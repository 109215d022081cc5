-- Its own migration: in the expand's transaction the UPDATE would read every row while the
-- ADD COLUMN's ACCESS EXCLUSIVE lock is held, blocking all traffic on {table} (DB015). Here it
-- takes only row locks; the trigger keeps the names equal for rows written meanwhile.
-- A bound on the statement, so a table far bigger than expected fails fast instead of running on.
SET statement_timeout = '15min';
UPDATE {table} SET {to} = {column} WHERE {to} IS DISTINCT FROM {column};
