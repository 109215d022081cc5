"""Presenting findings: text, CI formats, graph drawings."""
