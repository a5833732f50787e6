"""`harness serve`: the game-day service (HTTP API, web UI, scheduler, guards, run store).

Runs go through `harness.runner.execute`, exactly as `harness run` drives them; the service adds
history, schedules, guards, an emergency stop and its own metrics around it.
"""
