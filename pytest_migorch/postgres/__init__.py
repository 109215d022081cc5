"""Talking to PostgreSQL: connections, running files, throwaway servers, snapshots, probes."""
