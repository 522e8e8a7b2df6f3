"""gunicorn for the BCP Portal: `gunicorn -c deploy/gunicorn.conf.py portal.wsgi`.

Always behind the buffering nginx of deploy/nginx/bcp-portal.conf. Every setting can be
changed through the environment (the systemd unit's EnvironmentFile).
"""

import multiprocessing
import os

wsgi_app = "portal.wsgi:application"

# Where nginx's `upstream` points. Loopback only: clients never reach gunicorn directly.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# The sync worker. It handles one request at a time and blocks while it reads the body
# and writes the response, so on its own a client at 64 kbit/s holds a worker for as
# long as its upload takes (a 2.5 MB phone photo: over 5 minutes) and gunicorn kills it
# at `timeout`, losing the report. nginx reads the whole body first
# (proxy_request_buffering) and takes the whole response (proxy_buffering), both over
# loopback: a worker is busy only while the portal computes, never while a slow client
# sends or receives. That is the sync worker's ideal case, and it needs no gevent
# monkey-patching of the database drivers, Celery or Pillow.
worker_class = "sync"

# CPU-bound once the network is taken away: the usual (2 x cores) + 1, so a worker
# waiting on PostgreSQL or Redis leaves the cores to others. WEB_CONCURRENCY overrides.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))

# Sized for the slowest legitimate request as the app sees it (its body already in
# nginx's hands): a damage report with 5 photos of 5 MB each, every one opened and
# checked by Pillow and written to disk, or an invoice PDF with its embedded font — a
# few seconds on a loaded host. 30 s leaves ample room; a request longer than that is
# a defect (or a stuck query) and killing the worker frees it for the next customer.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
# On restart (systemctl reload sends HUP) a worker finishes its request first.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
# nginx opens a new connection per request to a sync worker; keep-alive does not apply.
keepalive = 2

# Recycle workers now and then, so a slow leak never grows for weeks; the jitter keeps
# them from restarting all at once.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 2000))
max_requests_jitter = 200

# The workers' heartbeat files on tmpfs: on a busy disk a heartbeat written to /tmp can
# stall long enough for the master to think the worker hung. Only gunicorn's own
# heartbeat files go there (no data), so a shared folder is harmless.
SHM = "/dev/shm"  # noqa: S108
worker_tmp_dir = SHM if os.path.isdir(SHM) else None

# nginx on this host is the only peer allowed to say the client used HTTPS.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
