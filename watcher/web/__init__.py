"""The web edge: pages, the JSON API under /api/v1, /metrics and /healthz, as one WSGI application.

- `app`: the application (routing, the token, security headers, errors as one line);
- `pages`: HTML for people (Jinja2 templates in `templates/`, one stylesheet in `static/`, no script);
- `api`: the CLI's JSON shapes (`watcher.record.documents`), paged with `Link: <…>; rel="next"`;
- `metrics`: Prometheus text and the health check, read from the database at each request;
- `server`: waitress in a thread, for `serve` and the daemon.

Every question goes to `watcher.record.overview_orm` and `watcher.record.history_orm`, the same functions the CLI asks.
"""
