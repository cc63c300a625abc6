"""Rendering alert emails: severity, subjects, bounded diffs, escaping, user templates, templates in the wheel."""

import logging
import shutil
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest

from watcher import display
from watcher.alerts import render, templating
from watcher.compare import sections
from watcher.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
KIB = 1024


# --- severity and subject ---------------------------------------------------------------------------


def test_subject_shortens_paths_and_caps_its_length(drift_event):
    old = {"tools": [{"type": "function", "function": {"name": f"f{n}", "description": "x"}} for n in range(60)],
           "instructions": "a"}
    new = {"tools": [{"type": "function", "function": {"name": f"f{n}", "description": "y"}} for n in range(60)],
           "instructions": "b"}
    event = drift_event(old, new, name="N" * 300)
    subject = render.render_event(event).subject
    assert len(subject) <= display.SUBJECT_LIMIT
    head = '[prod] [high] assistant "' + "N" * 79 + '…" modified: instructions, tools[0], tools[1], '
    assert subject.startswith(head)
    assert subject.endswith(" more")


def test_header_text_strips_line_breaks_and_controls():
    assert display.header_text("a\r\nBcc: x@y.z\n\tb\x00c\u2028d\x85e") == "a Bcc: x@y.z b c d e"
    assert display.header_text("x" * 500) == "x" * 199 + "…"


# --- what the text part says --------------------------------------------------------------------------


def test_scalars_show_before_and_after_and_tools_a_structural_list(drift_event):
    old = {"model": "gpt-4o", "temperature": 1.0, "tools": [{"type": "code_interpreter"}]}
    new = {"model": "gpt-4.1", "tools": [{"type": "code_interpreter"},
                                         {"type": "function", "function": {"name": "refund", "strict": True}}]}
    text = render.render_event(drift_event(old, new)).text
    assert 'model (changed)\n    "gpt-4o" → "gpt-4.1"' in text
    assert "temperature (removed)\n    1.0 → (absent)" in text
    assert ('tools[1] (added: function refund)\n    + tools[1].function.name = "refund"\n'
            "    + tools[1].function.strict = true\n    + tools[1].type = \"function\"") in text


def test_when_names_the_window_between_polls_or_the_agents_updated_at(drift_event):
    from datetime import datetime

    assistant = render.render_event(drift_event({"model": "a"}, {"model": "b"})).text
    assert "When:  between 2026-11-23T09:55:00Z and 2026-11-23T10:00:00Z (between two polls)" in assistant
    agent = render.render_event(drift_event({"model": "a"}, {"model": "b"}, kind="agents",
                                            updated_at=datetime(2026, 11, 23, 9, 58, tzinfo=UTC))).text
    assert "When:  2026-11-23T09:58:00Z (the agent's updated_at); detected 2026-11-23T10:00:00Z" in agent


def test_an_id_that_is_not_shell_safe_is_quoted_in_the_command(drift_event):
    event = drift_event({"model": "a"}, {"model": "b"}, object_id="asst_x; rm -rf ~")
    assert "assistant-watcher diff 'asst_x; rm -rf ~' --target prod --from 3 --to 4" in render.render_event(event).text


# --- bounded --------------------------------------------------------------------------------------------


def test_html_stays_bounded_even_when_every_character_must_be_escaped(drift_event, wire_size):
    old = {"instructions": "\n".join("<&>\"'" * 40 for _ in range(3000))}
    new = {"instructions": "\n".join("'\"<&>" * 40 for _ in range(3000))}
    email = render.render_event(drift_event(old, new))
    assert wire_size(email) < 256 * KIB
    assert "more lines — run: assistant-watcher diff" in email.text


def test_non_ascii_rewrites_of_every_line_stay_bounded_with_word_marks(drift_event, wire_size):
    lines = [f"{n} 请始终用适用的政策回答并注明编号 ü {'è' * 60} 日本語の説明 {n}" for n in range(4000)]
    for step in (1, 7):  # every line rewritten, and every 7th line edited (pairs get word marks)
        edited = [line.replace("ü", f"ö{n}") if n % step == 0 else line for n, line in enumerate(lines)]
        event = drift_event({"instructions": "\n".join(lines)}, {"instructions": "\n".join(edited)})
        email = render.render_event(event)
        assert wire_size(email) < 256 * KIB
    assert '<span style="background:#aceebb;font-weight:bold">ö7</span>' in email.html
    assert "      ↳ “ü” → “ö7”" in email.text


def test_a_very_long_line_is_clipped(drift_event):
    long_line = "x" * 100_000
    email = render.render_event(drift_event({"instructions": f"a\n{long_line}"}, {"instructions": f"b\n{long_line}"}))
    assert f"… ({1 + 100_000 - sections.LINE_LIMIT} more characters)" in email.text  # the context line " xxx…"
    assert len(email.text) < 10 * KIB


def test_an_object_nested_thousands_deep_renders_its_leaf_path(drift_event):
    deep = 1
    for _ in range(3000):
        deep = {"k": deep}
    event = drift_event({"model": "a"}, {"model": "a", "metadata": deep})
    text = render.render_event(event).text
    assert "metadata (added)\n    + metadata.k.k.k" in text
    assert "more characters)" in text  # the 12,000-character path is clipped


def test_scattered_edits_past_the_diff_budget_say_so_in_the_email(drift_event):
    import random

    rng = random.Random(5)
    vocabulary = [f"step {n}" for n in range(300)]
    lines = [rng.choice(vocabulary) for _ in range(40_000)]
    edited = [rng.choice(vocabulary) + " (edited)" if rng.random() < 0.33 else line for line in lines]
    email = render.render_event(drift_event({"instructions": "\n".join(lines)}, {"instructions": "\n".join(edited)}))
    assert "instructions (changed)\n    @@ not aligned in full: " in email.text
    assert "of 40,000 lines removed" in email.text


def test_a_digest_of_thousands_of_events_is_bounded(drift_event, wire_size):
    events = [drift_event({"model": "a"}, {"model": "b"}, name=f"Bot {n}", object_id=f"asst_{n}", number=n)
              for n in range(3000)]
    email = render.render_digest(events)
    assert email.subject == "[prod] [high] 3000 assistants changed in one poll: 3000 modified"
    assert wire_size(email) < 256 * KIB
    assert "more events — run: assistant-watcher events --target prod --since 2026-11-23T10:00:00Z" in email.text


# --- escaping ---------------------------------------------------------------------------------------------


def test_every_remote_value_is_escaped_in_html(drift_event):
    hostile = "<script>alert(1)</script>"
    event = drift_event({"model": hostile, "instructions": "a\nb"}, {"model": "x", "instructions": f"a\n{hostile}"},
                        name=hostile, object_id=f"asst_{hostile}", target="prod")
    for email in (render.render_event(event), render.render_digest([event])):
        assert "<script" not in email.html and "&lt;script&gt;" in email.html
    notice = render.render_failing("prod", "assistants", hostile, 3, None)
    assert "<script" not in notice.html and "&lt;script&gt;" in notice.html


# --- templates: built in, shipped in the wheel, overridable, sandboxed ---------------------------------


def test_builtin_templates_load_through_importlib_resources():
    import importlib.resources

    assert Path(str(importlib.resources.files("watcher.templates"))).resolve() == ROOT / "templates"
    assert sorted(templating.builtin_sources()) == sorted(p.name for p in (ROOT / "templates").glob("*.j2"))


@pytest.mark.slow
def test_templates_ship_in_the_wheel_and_load_from_it(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("watcher", "templates"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source), "-w",
                            str(tmp_path / "dist")], capture_output=True, text=True, timeout=300)
    if built.returncode != 0 and "satisfies the requirement setuptools" in built.stderr:
        pytest.skip("no package index to fetch setuptools for an isolated wheel build")
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("*.whl")
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from watcher.alerts import render, templating; "
             "assert render.__file__.startswith(sys.argv[1]), render.__file__; "
             "print(sorted(templating.builtin_sources())); print(render.render_test([('k', 'v')]).subject)")
    run = subprocess.run([sys.executable, "-c", probe, str(wheel)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [str(sorted(templating.builtin_sources())), "assistant-watcher test email"]


def test_user_templates_override_builtin_ones_and_can_include_them(tmp_path, drift_event):
    (tmp_path / "event.txt.j2").write_text("ACME NOC\n{% include 'builtin/event.txt.j2' %}")
    (tmp_path / "event.html.j2").write_text("<p>{{ title }}</p>")
    templates = templating.Templates(str(tmp_path))
    email = render.render_event(drift_event({"model": "a"}, {"model": "b"}, name="<b>x</b>"), templates)
    assert email.text.startswith('ACME NOC\nAssistant "<b>x</b>" was modified on prod')
    assert email.html == "<p>&lt;b&gt;x&lt;/b&gt;</p>"  # autoescaped in user HTML templates too


def test_a_user_subject_template_is_made_header_safe_and_capped(tmp_path, drift_event):
    (tmp_path / "event.subject.j2").write_text('ACME {{ severity|upper }}: {{ title }}\r\nBcc: {{ name }} {{ "x" * 400 }}')
    templates = templating.Templates(str(tmp_path))
    email = render.render_event(drift_event({"model": "a"}, {"model": "b"}, name="Bot\r\nBcc: evil@example.com"),
                                templates)
    assert email.subject.startswith("ACME HIGH: Bot Bcc: evil@example.com Bcc: Bot")
    assert "\r" not in email.subject and "\n" not in email.subject
    assert len(email.subject) == display.SUBJECT_LIMIT and email.subject.endswith("…")


def test_the_builtin_subject_templates_give_the_computed_subject(drift_event):
    event = drift_event({"model": "a"}, {"model": "b"})
    assert render.render_event(event).subject == render.event_context(event)["subject"]
    assert render.render_test([("k", "v")]).subject == "assistant-watcher test email"


def test_user_templates_run_sandboxed_and_fall_back_to_the_builtin(tmp_path, drift_event, caplog):
    (tmp_path / "event.txt.j2").write_text("{{ title.__class__.__mro__[1].__subclasses__() }}")
    templates = templating.Templates(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="watcher.render"):
        email = render.render_event(drift_event({"model": "a"}, {"model": "b"}), templates)
    assert "subclasses" not in email.text and "<class" not in email.text
    assert email.text.startswith('Assistant "Billing Bot" was modified')
    assert "template event.txt.j2 failed" in caplog.text and "using the built-in one" in caplog.text


def test_a_broken_user_template_is_a_config_error_before_any_poll(sandbox, smtp_server, mail_config, cli, tmp_path):
    templates = tmp_path / "mytemplates"
    templates.mkdir()
    (templates / "event.txt.j2").write_text("{% if %}")
    config = mail_config(sandbox, smtp_server(), alerts=f'templates_dir = "{templates}"\n')
    result = cli(config, "snapshot")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("config error: alerts.templates_dir: event.txt.j2: line 1:")
    with pytest.raises(ConfigError, match="is not a directory"):
        templating.Templates(str(tmp_path / "missing"))


def test_a_rendering_bug_still_records_the_poll_and_queues_a_plain_alert(sandbox, smtp_server, mail_config, cli,
                                                                         cli_json, monkeypatch):
    server = smtp_server()
    config = mail_config(sandbox, server)
    cli(config, "snapshot")
    victim = sandbox.objects("assistants")[0]
    sandbox.edit("assistants", victim["id"], model="gpt-render-bug")

    def broken(*_args, **_kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(render, "render_event", broken)
    assert cli(config, "snapshot").exit_code == 0
    assert [e["change"] for e in cli_json(config, "events")] == ["modified"]
    [mail] = server.messages
    assert mail.subject == f"[prod] assistant {victim['id']} modified"
    assert "could not be rendered" in mail.text
