"""Live proof that the checks fail on deliberately broken observability (issue 6)."""
