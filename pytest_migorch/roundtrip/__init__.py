"""The up/down/up round-trip of every migration in a throwaway database."""
