"""The built-in Jinja2 alert templates (shipped in the wheel as `watcher.templates`)."""
