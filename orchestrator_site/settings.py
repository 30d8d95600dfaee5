"""Settings for Orchestrator, read from the environment (see .env.example).

Without DATABASE_URL the app runs on SQLite in ./var; without REDIS_URL the cache is
in-process and Celery uses a broker on the local filesystem, so `make run` needs no
external server. With both set, any number of web and worker processes share state.
"""

from pathlib import Path

import dj_database_url
import plotly
from django.core.management.utils import get_random_secret_key

from .env import env_bool, env_int, env_list, env_str, redis_cache

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ORCHESTRATOR_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY") or (get_random_secret_key() if DEBUG else "")
if not SECRET_KEY:
    # A stable key survives restarts (sessions stay valid); it lives in var/, never in git.
    _key_file = VAR_DIR / "secret_key"
    if not _key_file.exists():
        _key_file.write_text(get_random_secret_key())
        _key_file.chmod(0o600)
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "simple_history",
    "routing",
    "metrics",
    "gateway",
    "playground",
    "compare",
    "dashboards",  # no models: its management command (simulate_traffic)
    "ninja",  # its bundled Swagger UI assets for /api/v1/docs (no CDN)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "orchestrator_site.urls"
ASGI_APPLICATION = "orchestrator_site.asgi.application"
WSGI_APPLICATION = None

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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the embedded worker read while one of them writes.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(VAR_DIR / "test.sqlite3")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
# Every Redis command on the request path gives up after this long (a stalled Redis must not
# stall requests): the breaker, config version and limits then degrade (docs/production.md).
REDIS_TIMEOUT_MS = env_int("ORCHESTRATOR_REDIS_TIMEOUT_MS", 250)
if REDIS_URL:
    CACHES = {"default": redis_cache(REDIS_URL, timeout_ms=REDIS_TIMEOUT_MS)}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "orchestrator"}
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# plotly.js is served from the installed plotly package: no CDN, no vendored copy to go stale.
STATICFILES_DIRS = [BASE_DIR / "static", ("plotly", Path(plotly.__file__).parent / "package_data")]

# Security: safe defaults, strict when not in DEBUG.
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# HTTPS=false for plain-http local serving (`make run`, tests); production keeps it on.
HTTPS = env_bool("HTTPS", not DEBUG)
if HTTPS:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpx2": {"level": "WARNING"}},
}

# Celery: Redis in production; a filesystem broker otherwise, so the embedded worker of
# `make run` needs no external server. Queue names live here, in one place.
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost//"  # a host, or kombu warns on start
if not REDIS_URL:
    _broker_dir = VAR_DIR / "celery-broker"
    (_broker_dir / "out").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "data_folder_processed": str(_broker_dir / "processed"),
        # Exchange tables too, or kombu writes them to ./control in the working directory.
        "control_folder": str(_broker_dir / "control"),
        "polling_interval": 0.25,
    }
else:
    # An unacknowledged task (its worker died) is handed to another worker after this long;
    # cells are claimed by state, so an early redelivery never runs a cell twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_S", 3600),
        # How often a worker looks for such messages (seconds × throttle).
        "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL_S", 10),
        "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_THROTTLE", 10),
        "socket_connect_timeout": 4,
        # A stalled broker fails a publish (launching compare work) instead of hanging it.
        "socket_timeout": env_int("CELERY_REDIS_SOCKET_TIMEOUT_S", 5),
    }
    CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
# CELERY_QUEUE_PREFIX isolates one deployment's (or one test run's) workers on a shared Redis.
_queue_prefix = env_str("CELERY_QUEUE_PREFIX", "")
CELERY_TASK_DEFAULT_QUEUE = f"{_queue_prefix}default"
CELERY_QUEUES_BY_PURPOSE = {
    purpose: f"{_queue_prefix}{purpose}" for purpose in ("default", "cells", "drills", "periodic")
}
# Route tasks by purpose; other apps add theirs here (glob patterns allowed).
CELERY_TASK_ROUTES = {
    "compare.tasks.cell_execute": {"queue": CELERY_QUEUES_BY_PURPOSE["cells"]},
    "compare.tasks.drill_execute": {"queue": CELERY_QUEUES_BY_PURPOSE["drills"]},
    "compare.tasks.cells_sweep": {"queue": CELERY_QUEUES_BY_PURPOSE["periodic"]},
    "metrics.tasks.*": {"queue": CELERY_QUEUES_BY_PURPOSE["periodic"]},
    "gateway.tasks.*": {"queue": CELERY_QUEUES_BY_PURPOSE["periodic"]},
}
# Periodic jobs run by `celery beat` (embedded in `make run`; one beat process in production).
CELERY_BEAT_SCHEDULE: dict = {
    "compare-sweep-stale-cells": {"task": "compare.tasks.cells_sweep", "schedule": 20.0},
    "metrics-rollup-calls": {"task": "metrics.tasks.rollup_calls", "schedule": 60.0},
    "gateway-purge-responses": {"task": "gateway.tasks.responses_purge", "schedule": 3600.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Launching work fails fast with a clear message when the broker is down (no endless retry).
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("CELERY_BROKER_CONNECTION_TIMEOUT_S", 4)
# Compare runs: a cell's call may take this long before its claim lapses and another worker
# may take it over (keep it above the engine's worst case: chain steps × timeout × retries).
COMPARE_CELL_TIME_LIMIT_S = env_int("COMPARE_CELL_TIME_LIMIT_S", 300)
COMPARE_CELL_MAX_RETRIES = env_int("COMPARE_CELL_MAX_RETRIES", 3)
# A worker renews its slots and claims this often; they lapse 4 heartbeats after its last one
# (a killed worker's work is taken over within seconds, not after the cell's time limit).
COMPARE_WORKER_HEARTBEAT_MS = env_int("COMPARE_WORKER_HEARTBEAT_MS", 5000)
# Cells in flight at once per provider, across every worker (a shared-cache semaphore).
COMPARE_PROVIDER_CONCURRENCY = env_int("COMPARE_PROVIDER_CONCURRENCY", 4)
COMPARE_PROVIDER_CONCURRENCY_OVERRIDES: dict[str, int] = {}

# Orchestrator's own knobs.
ORCHESTRATOR: dict = {
    # Request/response text kept on call records: characters per field; 0 turns storage off.
    "RECORD_TEXT_LIMIT": env_int("ORCHESTRATOR_RECORD_TEXT_LIMIT", 20_000),
    "ERROR_MESSAGE_LIMIT": 2_000,
    "DEFAULT_TIMEOUT_S": env_int("ORCHESTRATOR_DEFAULT_TIMEOUT_S", 60),
    # Extra processors: {"name": "dotted.path.to.function"}.
    "PROCESSORS": {},
    # Votes a model needs in a capability before ratings replace the operator's quality rank.
    "RATING_MIN_VOTES": env_int("ORCHESTRATOR_RATING_MIN_VOTES", 20),
    # Where quality routing gets measured ratings (arena votes); the operator's rank is the fallback.
    "QUALITY_SOURCE": "playground.selectors.model_quality_scores",
    "PLAYGROUND_MAX_MODELS": env_int("ORCHESTRATOR_PLAYGROUND_MAX_MODELS", 6),
    "COMPARE_MAX_PROMPTS": env_int("ORCHESTRATOR_COMPARE_MAX_PROMPTS", 500),
    "GATEWAY_MAX_BODY_BYTES": env_int("ORCHESTRATOR_GATEWAY_MAX_BODY_BYTES", 8_000_000),
    # Seconds a server process trusts its cached lookup of an API key (revocation delay across processes).
    "GATEWAY_KEY_CACHE_S": env_int("ORCHESTRATOR_GATEWAY_KEY_CACHE_S", 5),
    # While the database cannot answer (down, or slower than GATEWAY_KEY_DB_TIMEOUT_S), keys a
    # process has seen keep working for this long after they were last read; unknown keys get 503.
    "GATEWAY_KEY_STALE_S": env_int("ORCHESTRATOR_GATEWAY_KEY_STALE_S", 300),
    "GATEWAY_KEY_DB_TIMEOUT_S": env_int("ORCHESTRATOR_GATEWAY_KEY_DB_TIMEOUT_S", 3),
    # An admitted request's reservation against its key's budget and tpm lapses after this long
    # if the request never settles it (a crashed process).
    "GATEWAY_RESERVATION_TTL_S": env_int("ORCHESTRATOR_GATEWAY_RESERVATION_TTL_S", 120),
    # Responses API: how long a stored response (store: true) is kept for GET and previous_response_id.
    "RESPONSES_TTL_S": env_int("ORCHESTRATOR_RESPONSES_TTL_S", 30 * 24 * 3600),
    # Redis on the request path: socket timeout, and how long to leave it alone after a failure.
    "REDIS_TIMEOUT_MS": REDIS_TIMEOUT_MS,
    "REDIS_RETRY_S": env_int("ORCHESTRATOR_REDIS_RETRY_S", 1),
    # Engine: retries of transient errors (per model), backoff and the cap on a provider's retry-after.
    "RETRY_MAX": env_int("ORCHESTRATOR_RETRY_MAX", 2),
    "RETRY_BASE_S": 0.25,
    "RETRY_MAX_DELAY_S": 4.0,
    "RETRY_AFTER_CAP_S": 10.0,
    # Circuit breaker per model: opens after N failures within the window, probes after the cooldown.
    "BREAKER_FAILURES": env_int("ORCHESTRATOR_BREAKER_FAILURES", 5),
    "BREAKER_WINDOW_S": env_int("ORCHESTRATOR_BREAKER_WINDOW_S", 60),
    "BREAKER_COOLDOWN_S": env_int("ORCHESTRATOR_BREAKER_COOLDOWN_S", 30),
    # Latency routing uses the measured p50 once a model has this many ok calls in the window.
    "LATENCY_MIN_CALLS": env_int("ORCHESTRATOR_LATENCY_MIN_CALLS", 20),
    "LATENCY_WINDOW_S": env_int("ORCHESTRATOR_LATENCY_WINDOW_S", 3600),
    "STATS_REFRESH_S": 30,
    # Call records are buffered and written in bulk by a background thread every this many
    # seconds; 0 writes them at the end of each call instead (tests: records visible at once).
    "RECORD_FLUSH_INTERVAL_S": 0 if env_bool("ORCHESTRATOR_TESTING", False) else 0.1,
    # Each buffered record is also appended to a per-process file under VAR_DIR/record-spool/
    # until written, so a process killed outright loses none (replayed by the next to record).
    "RECORD_SPOOL": env_bool("ORCHESTRATOR_RECORD_SPOOL", True),
    # OpenAI-style chat completions and embeddings, and Anthropic's messages, on the lean HTTP
    # path instead of the SDKs' request path (the same request and errors, less CPU;
    # docs/providers.md, "The lean HTTP path").
    "PROVIDER_LEAN_HTTP": env_bool("ORCHESTRATOR_PROVIDER_LEAN_HTTP", True),
}
# Pages take prompts up to the largest context windows (2M tokens ≈ 8 MB) and answer a bigger
# one with "the prompt is about N tokens", not a bare 400; the gateway enforces its own limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(int(ORCHESTRATOR["GATEWAY_MAX_BODY_BYTES"]) + 1024, 10_000_000)

if env_bool("ORCHESTRATOR_TESTING", False):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
