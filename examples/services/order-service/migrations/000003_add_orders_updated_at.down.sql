SET lock_timeout = '5s';

DROP TRIGGER orders_touch_updated_at ON orders;
DROP FUNCTION touch_updated_at();
ALTER TABLE orders DROP COLUMN updated_at;
