"""Triggers, schedules, workers, the event bridge and the local stack."""
