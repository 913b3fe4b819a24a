"""What the tests and the benches share: real worker/beat processes and private Redis and
PostgreSQL servers (processes), jobs and executions made through the services (factories), one
way to run an execution in this process (runs), the local HTTP endpoint of the fault scenarios
(sink) and the invariants they end by checking (checker), the handlers and batch jobs the test
settings register (fault_handlers, batch_jobs), the database engines a test needs (engines),
the admin form submissions (admin_forms) and a connection-counting TCP listener (sockets).
Test modules import what they share from here, not from one another (pytest fixtures excepted:
they are shared through conftest.py)."""
