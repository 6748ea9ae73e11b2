"""The reconstruction library: plain numpy + numba, no orchestration."""
