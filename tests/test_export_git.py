"""The record as a git repository: one file per object, one commit per version, read back with git itself."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from dulwich.repo import Repo

from watcher.export.git import object_path

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="the git CLI reads the exported history back")


@pytest.fixture
def recorded(write_config, sandbox, store_url, cli):
    """A config whose record holds a baseline of the sandbox's assistants and agents."""
    config = write_config(sandbox, store_url)
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    return config


def git(directory: Path, *args: str) -> str:
    return subprocess.run([GIT or "git", "-C", str(directory), *args], capture_output=True, text=True,
                          check=True).stdout


def exported(cli, config, directory: Path, *args: str):
    result = cli(config, "export", "git", str(directory), *args)
    assert result.exit_code == 0, result.output
    return result


@needs_git
def test_every_version_is_a_commit_and_every_object_a_file_git_reads(recorded, sandbox, cli, tmp_path):
    history = tmp_path / "history"
    result = exported(cli, recorded, history)
    assert "10 commits added, through version 10" in result.stdout
    assert git(history, "rev-list", "--count", "main").strip() == "10"
    assert git(history, "status", "--porcelain") == ""
    agent = sandbox.objects("agents")[0]
    shown = json.loads(git(history, "show", f"main:prod/agents/{agent['id']}.json"))
    assert shown["model"] == agent["model"] and shown["id"] == agent["id"]
    assert git(history, "log", "-1", "--format=%an <%ae>").strip() == \
        "unknown (out of band) <unknown@assistant-watcher.invalid>"
    git(history, "fsck", "--strict")


@needs_git
def test_a_second_export_adds_only_what_was_recorded_since(recorded, sandbox, cli, tmp_path):
    history = tmp_path / "history"
    exported(cli, recorded, history)
    assert "up to date (version 10)" in exported(cli, recorded, history).stdout
    agent = sandbox.objects("agents")[0]
    sandbox.edit("agents", agent["id"], model="gpt-5-nano")
    assert cli(recorded, "snapshot", "--no-email").exit_code == 0
    assert "1 commit added, through version 11" in exported(cli, recorded, history).stdout
    subject = git(history, "log", "-1", "--format=%s").strip()
    assert subject.startswith("modified: agent ") and subject.endswith("(prod)")
    diff = git(history, "log", "-1", "-p", "--format=")
    assert '-  "model": "' + agent["model"] + '"' in diff and '+  "model": "gpt-5-nano"' in diff
    updated = sandbox.get("agents", agent["id"])["updated_at"]
    assert git(history, "log", "-1", "--format=%at").strip() == str(updated)  # the edit time, not the poll's


def test_a_change_made_through_apply_is_authored_by_who_applied_it(recorded, sandbox, cli, cli_json, tmp_path):
    victim = sandbox.objects("assistants")[0]
    body = cli_json(recorded, "show", victim["id"])
    file = tmp_path / "change.json"
    file.write_text(json.dumps({**body, "instructions": "Approved."}))
    assert cli(recorded, "apply", str(file), "--by", "alice@acme.example").exit_code == 0
    history = tmp_path / "history"
    exported(cli, recorded, history)
    head = Repo(str(history))[Repo(str(history)).refs[b"refs/heads/main"]]
    assert head.author == b"alice@acme.example <alice@acme.example>"
    assert head.message.decode().startswith("applied: assistant ")


def test_a_directory_with_other_files_is_refused_and_left_as_it_is(recorded, cli, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    result = cli(recorded, "export", "git", str(mine))
    assert result.exit_code == 1 and "not empty and not a git repository" in result.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


@needs_git
def test_another_repository_is_refused(recorded, cli, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    (other / "README").write_text("someone else's\n")
    git(other, "add", "README")
    git(other, "-c", "user.name=x", "-c", "user.email=x@example.com", "commit", "-q", "-m", "theirs")
    result = cli(recorded, "export", "git", str(other))
    assert result.exit_code == 1 and "not written by assistant-watcher" in result.stderr
    assert git(other, "rev-list", "--count", "main").strip() == "1"


@needs_git
def test_a_history_with_local_changes_is_refused(recorded, sandbox, cli, tmp_path):
    history = tmp_path / "history"
    exported(cli, recorded, history)
    agent = sandbox.objects("agents")[0]
    (history / "prod" / "agents" / f"{agent['id']}.json").write_text("{}\n")
    result = cli(recorded, "export", "git", str(history))
    assert result.exit_code == 1 and "local changes" in result.stderr


def test_a_history_of_one_target_takes_only_that_target(recorded, cli, tmp_path):
    history = tmp_path / "history"
    exported(cli, recorded, history, "--target", "prod")
    result = cli(recorded, "export", "git", str(history))
    assert result.exit_code == 1 and "holds target prod only" in result.stderr
    unknown = cli(recorded, "export", "git", str(tmp_path / "other"), "--target", "nope")
    assert unknown.exit_code == 2 and "no target 'nope'" in unknown.stderr


@pytest.mark.parametrize(("object_id", "expected"), [
    ("asst_1", "prod/agents/asst_1.json"),
    ("../../etc/passwd", "prod/agents/%2E.%2F..%2Fetc%2Fpasswd.json"),
    ("skill_1/3", "prod/agents/skill_1%2F3.json"),
    (".git", "prod/agents/%2Egit.json"),
])
def test_a_remote_id_names_one_file_inside_its_kind(object_id, expected):
    assert object_path("prod", "agents", object_id) == expected


@needs_git
def test_a_history_an_export_stopped_writing_is_put_right_by_the_next(recorded, sandbox, cli, tmp_path):
    history = tmp_path / "history"
    exported(cli, recorded, history)
    agent = sandbox.objects("agents")[0]
    (history / ".git" / "watcher-writing").touch()  # as a kill between moving main and the work tree leaves it
    (history / "prod" / "agents" / f"{agent['id']}.json").write_text("half written")
    assert "up to date" in exported(cli, recorded, history).stdout
    assert git(history, "status", "--porcelain") == "" and not (history / ".git" / "watcher-writing").exists()


def test_the_daemons_export_job_keeps_the_history_current(recorded, sandbox, engine, tmp_path):
    from watcher.config.model import load_config
    from watcher.run.export_job import ExportJob

    config = load_config(recorded)
    config = config.model_copy(update={"export": config.export.model_copy(update={"git": str(tmp_path / "history")})})
    job = ExportJob(lambda: (engine, config))
    job.request()
    job.close()
    repo = Repo(str(tmp_path / "history"))
    assert b"Watcher-Version: 10" in repo[repo.refs[b"refs/heads/main"]].message


def test_export_git_in_the_config_is_read_beside_the_config_file(tmp_path):
    from watcher.config.model import load_config

    path = tmp_path / "config.toml"
    path.write_text('[export]\ngit = "history"\n')
    assert load_config(path).export.git == str(tmp_path / "history")



def test_the_daemons_export_job_pushes_to_the_remote_after_adding_commits(recorded, engine, tmp_path):
    from watcher.config.model import load_config
    from watcher.run.export_job import ExportJob

    remote = tmp_path / "remote.git"
    Repo.init_bare(str(remote), mkdir=True)
    config = load_config(recorded)
    export = config.export.model_copy(update={"git": str(tmp_path / "history"), "push": str(remote)})
    job = ExportJob(lambda: (engine, config.model_copy(update={"export": export})))
    job.request()
    job.close()
    pushed = Repo(str(remote)).refs[b"refs/heads/main"]
    assert pushed == Repo(str(tmp_path / "history")).refs[b"refs/heads/main"]


def test_a_push_that_fails_says_so_in_one_line_without_the_urls_credentials(tmp_path, recorded, engine):
    from watcher.errors import ExportError
    from watcher.export.git import push
    from watcher.export.history import export_git

    export_git(engine, tmp_path / "history")
    with pytest.raises(ExportError) as caught:
        push(tmp_path / "history", "http://bot:s3cr3t@127.0.0.1:9/history.git")
    assert "s3cr3t" not in str(caught.value) and "\n" not in str(caught.value)
