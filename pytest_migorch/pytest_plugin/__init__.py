"""The pytest front end: options, collectors, items, CI report hooks."""
