"""The deploy runner: tracking, planning, locking, applying, status."""
