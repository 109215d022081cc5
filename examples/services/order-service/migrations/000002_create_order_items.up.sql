SET lock_timeout = '5s';

CREATE TABLE order_items (
    id          BIGSERIAL PRIMARY KEY,
    order_id    BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    sku         TEXT NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    price_cents BIGINT NOT NULL
);

CREATE INDEX order_items_order_id_idx ON order_items (order_id);
