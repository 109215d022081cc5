SET lock_timeout = '5s';

ALTER TABLE orders ADD COLUMN updated_at TIMESTAMPTZ;

-- The function body holds semicolons; it is still one statement.
CREATE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER orders_touch_updated_at
    BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
