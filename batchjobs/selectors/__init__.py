"""Reads shared by the API, the command line, the admin, the dashboard and /metrics, one module
per thing read. Nothing here writes (beat's heartbeat, which liveness reads, is written by
batchjobs.scheduling.heartbeat)."""
