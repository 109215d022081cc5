SET lock_timeout = '5s';

CREATE TABLE user_profiles (
    user_id      BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    display_name TEXT,
    bio          TEXT,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

COMMENT ON TABLE user_profiles IS 'Optional public profile of a user';
