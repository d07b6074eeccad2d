"""Gunicorn settings shared by the four services: `gunicorn -c python:healthguard.gunicorn_conf
"<service>.app:create_app()"`. The port comes from $PORT, which compose and the Procfile set.

Gunicorn serves HTTP only: consumers, relays and periodic tasks run in the service's worker
process (`python -m healthguard.worker <service>`), which shares PROMETHEUS_MULTIPROC_DIR with it
so that /metrics here includes its counters."""
import os
import sys
import tempfile

import gunicorn.http.wsgi
import gunicorn.util

from healthguard.gunicorn_worker import write_json_error

# gunicorn writes "Server: gunicorn" on every response and has no setting to leave it out: the
# name it writes is read from this module attribute when each response starts. A name of ours
# tells a scanner neither the server software nor a version to look up.
gunicorn.http.wsgi.SERVER = "healthguard"
# gunicorn answers a request it cannot parse with an HTML page, written by this function; ours
# answers in the services' JSON error shape (every error a client sees is JSON, issue 17).
gunicorn.util.write_error = write_json_error

if not os.environ.get("PORT"):
    sys.exit("healthguard: missing required setting PORT (the port this service listens on)")

# prometheus-client picks its storage when first imported, so the directory must be set here,
# in the master, before any worker imports the app.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="healthguard-metrics-")

# In a container the service must answer on the network; the local runner sets 127.0.0.1.
bind = f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{os.environ['PORT']}"  # noqa: S104
# Sized for 2 cores: a process per core (the GIL lets one process use one), and threads to cover
# the time a request waits on PostgreSQL (most of it, by the profile of POST /alerts). Threads
# match the pool (DB_POOL_MAX, 8 by default): more would only wait for a connection, and every
# process more costs its pool from the connection budget (README, "Connection budget").
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# gthread, reading each request's headers without a thread and within GUNICORN_HEADER_SECONDS
# (healthguard.gunicorn_worker): a client trickling its headers cannot hold the threads.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "healthguard.gunicorn_worker.HeaderDeadlineWorker")
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# The worker accepts at most worker_connections at once (gunicorn's default is 1000): keep room for
# a service that holds a thread per long-lived connection (the notification service's WebSockets).
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", str(max(1000, threads + 100))))
timeout = 30
graceful_timeout = 10
accesslog = None  # the app logs every request itself, as JSON with its request id
errorlog = "-"
# gunicorn's control socket (gunicornc: change worker counts, reload, stop) is used by nothing of
# ours, and is one more way in; it would also be made under $HOME, which the image's user has
# none of (/nonexistent): every container logged a permission error for it.
control_socket_disable = True


def on_starting(server):
    # Counts of a previous run of this web server must not leak into this one. Only the web
    # workers' files go (named by pid): the service's worker process may be running already,
    # and deleting the files it has mapped would hide every count it makes from then on.
    from healthguard.worker import remove_web_metric_files
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    remove_web_metric_files(directory)


def post_worker_init(worker):
    from healthguard.web import start_web_background
    start_web_background(worker.wsgi)


def worker_exit(server, worker):
    from healthguard.web import stop_web_background
    stop_web_background(worker.wsgi)


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)
