"""gunicorn's settings for web, wherever it runs (the quick start, the Dockerfile, Compose):
`gunicorn -c config/gunicorn.py`.

Threads, not gunicorn's default sync workers: a sync worker reads the request of the one
connection it accepted, so a connection that sends nothing (a browser's speculative
preconnect) held one of two workers until gunicorn killed it ("WORKER TIMEOUT ... no URI
read", ~30 s). A gthread worker waits for a request in its event loop and hands a connection
to a thread only once it is readable: idle connections cost no thread, and each worker still
answers while one thread is busy. The number of processes stays gunicorn's: --workers, else
WEB_CONCURRENCY, else 1.
"""

import os

wsgi_app = "config.wsgi"
worker_class = "gthread"
# Per process. Django opens one database connection per thread (kept CONN_MAX_AGE seconds):
# processes x threads bounds web's sessions.
threads = int(os.environ.get("BATCHJOBS_WEB_THREADS", "4"))
