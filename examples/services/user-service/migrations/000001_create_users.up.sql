-- Users are the root of every other service's data.
CREATE TABLE users (
    id         BIGSERIAL PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    full_name  TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
