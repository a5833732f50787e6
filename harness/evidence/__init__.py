"""Evidence: the run's JSON bundle (the source of truth) and the reports derived from it."""
