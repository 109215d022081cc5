SET lock_timeout = '5s';

CREATE TABLE notifications (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES user_service.users (id),
    order_id    BIGINT REFERENCES order_service.orders (id),
    template_id BIGINT NOT NULL REFERENCES templates (id),
    sent_at     TIMESTAMPTZ
);

CREATE VIEW pending_notifications AS
SELECT id, user_id, template_id FROM notifications WHERE sent_at IS NULL;
