SET lock_timeout = '5s';
ALTER TABLE {table} ADD COLUMN {to} {type};
-- Until the contract migration, old and new code may write either name: keep both equal.
CREATE FUNCTION {sync}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.{to} := COALESCE(NEW.{to}, NEW.{column});
        NEW.{column} := COALESCE(NEW.{column}, NEW.{to});
    ELSIF NEW.{column} IS DISTINCT FROM OLD.{column} THEN
        NEW.{to} := NEW.{column};
    ELSIF NEW.{to} IS DISTINCT FROM OLD.{to} THEN
        NEW.{column} := NEW.{to};
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER {sync} BEFORE INSERT OR UPDATE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {sync}();
