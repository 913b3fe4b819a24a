"""The REST API's views, one module per resource (jobs, schedules, executions, registries,
the scheduler, the docs), the seed-era aliases in seed_aliases; what they share in base."""
