"""The demo and worked examples of batchjobs, as an app of its own (BATCHJOBS_EXAMPLES): the
customer tables and their second database (`warehouse`), example handlers and batch jobs, the
quick start's demo jobs (`manage.py demo_seed`) and the endpoint its HTTP job calls."""
