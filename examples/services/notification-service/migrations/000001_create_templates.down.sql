DROP TABLE templates;
DROP TYPE channel;
