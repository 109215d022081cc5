INSERT INTO users (id, email) VALUES (1, 'dev@example.com');
