"""End-to-end tests: real containers and processes (marked e2e)."""
