"""Checks of one migration's SQL: affects_tables, risk rules, the declared risk level."""
