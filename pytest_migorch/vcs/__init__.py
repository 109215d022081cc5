"""Git: released-migration integrity against a base revision."""
