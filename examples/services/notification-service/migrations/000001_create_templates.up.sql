CREATE TYPE channel AS ENUM ('email', 'sms', 'push');

CREATE TABLE templates (
    id      BIGSERIAL PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    channel channel NOT NULL,
    body    TEXT NOT NULL
);
