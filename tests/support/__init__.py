"""What the tests and the benches share: real worker/beat processes and private Redis and
PostgreSQL servers (processes), jobs and executions made through the services (factories), one
way to run an execution in this process (runs), the local HTTP endpoint of the fault scenarios
(sink) and the invariants they end by checking (checker), the handlers and batch jobs the test
settings register (fault_handlers, batch_jobs), and the database engines a test needs (engines).
Test modules import from here, never from one another."""
