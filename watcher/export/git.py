"""The record's versions as commits of a git repository, with dulwich (no `git` binary needed).

A history repository is a non-bare repository on branch `main` whose work tree holds one file per
object (`<target>/<kind>/<id>.json`, the canonical body pretty printed) and whose commits are the
record's versions in the order they were observed, each carrying the record's version id in a
trailer (`Watcher-Version: N`): the next export resumes after the last one, so exporting again adds
only what was recorded since. A directory holding another repository (other history, or a work tree
with local changes) is refused, never written over.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dulwich import porcelain
from dulwich.index import IndexEntry, index_entry_from_stat
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from watcher.errors import ExportError

if TYPE_CHECKING:
    from dulwich.objects import ObjectID, ShaFile
    from dulwich.refs import Ref

BRANCH = cast("Ref", b"refs/heads/main")
HEAD = cast("Ref", b"HEAD")
TRAILER = "Watcher-Version: "
COMMITTER = b"assistant-watcher <watcher@assistant-watcher.invalid>"
WRITING = "watcher-writing"  # in .git while an export moves main and its work tree: gone when both agree
_TRAILER_LINE = re.compile(rb"^Watcher-Version: (\d+)$", re.MULTILINE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")  # anything else in a remote id is escaped in its file name


@dataclass(frozen=True, kw_only=True)
class ExportedVersion:
    """One recorded version as a commit: the file it writes, who made it, when, and why."""

    version_id: int
    path: str  # `<target>/<kind>/<id>.json`, see `object_path`
    content: bytes
    author: str  # "Name <email>"
    authored_at: datetime
    committed_at: datetime
    message: str


def object_path(target: str, kind: str, object_id: str) -> str:
    """The file of one object: each part escaped, so no remote id can name another file or leave the tree."""
    return "/".join(_part(part) for part in (target, kind)) + f"/{_part(object_id)}.json"


def _part(text: str) -> str:
    escaped = _UNSAFE.sub(lambda c: "".join(f"%{b:02X}" for b in c.group().encode("utf-8")), text)
    return escaped if escaped not in ("", ".", "..") and not escaped.startswith(".") else "%2E" + escaped[1:]


class History:
    """The history repository at `directory`, created when absent; refused when it is not one of ours."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        self.repo = self._open()

    def _open(self) -> Repo:
        if not self.directory.exists() or not any(self.directory.iterdir()):
            self.directory.mkdir(parents=True, exist_ok=True)
            return Repo.init(str(self.directory), default_branch=b"main")
        if not (self.directory / ".git").is_dir():
            raise ExportError(f"{self.directory}: not empty and not a git repository: give an empty directory "
                              "or one a previous export wrote")
        repo = Repo(str(self.directory))
        head = _branch_head(repo)
        if head is None:
            if list(repo.refs.keys()):
                raise ExportError(f"{self.directory}: a git repository without branch main: not an "
                                  "assistant-watcher history")
            return repo
        if _TRAILER_LINE.search(_commit_at(repo, head).message) is None:
            raise ExportError(f"{self.directory}: its branch main was not written by assistant-watcher "
                              "(no Watcher-Version trailer): refusing to add to another history")
        if (self.directory / ".git" / WRITING).exists():  # an export stopped mid-write: its files are ours
            porcelain.reset(repo, "hard", head)
            (self.directory / ".git" / WRITING).unlink()
        changed = porcelain.status(repo, untracked_files="no")
        if any(changed.staged.values()) or changed.unstaged:
            raise ExportError(f"{self.directory}: the work tree has local changes: commit or discard them first")
        return repo

    def last_version(self) -> int | None:
        """The record's version id of the newest commit, or None for a new history."""
        head = _branch_head(self.repo)
        if head is None:
            return None
        found = _TRAILER_LINE.search(_commit_at(self.repo, head).message)
        return int(found.group(1)) if found else None

    def append(self, versions: Iterable[ExportedVersion]) -> int:
        """Commit each version in order on main, then write the touched files and the index; the count."""
        parent = _branch_head(self.repo)
        root = _tree_at(self.repo, _commit_at(self.repo, parent).tree) if parent else Tree()
        trees: dict[str, Tree] = {}  # directory path -> its tree as changed so far
        touched: dict[str, Blob] = {}
        objects: list[tuple[ShaFile, str | None]] = []
        count = 0
        for version in versions:
            blob = Blob.from_string(version.content)
            objects.append((blob, None))
            touched[version.path] = blob
            root = self._with_file(root, version.path, blob, trees, objects)
            objects.append((root, None))
            commit = _commit(root.id, parent, version)
            objects.append((commit, None))
            parent = commit.id
            count += 1
        if not count:
            return 0
        self.repo.object_store.add_objects(objects)  # one pack, not a loose file per object
        marker = self.directory / ".git" / WRITING
        marker.touch()
        self.repo.refs[BRANCH] = cast("ObjectID", parent)
        if self.repo.refs.read_ref(HEAD) is None:
            self.repo.refs.set_symbolic_ref(HEAD, BRANCH)
        self._check_out(touched)
        marker.unlink()
        return count

    def _with_file(self, root: Tree, path: str, blob: Blob, trees: dict[str, Tree], objects: list[Any]) -> Tree:
        """`root` with `path` set to `blob`: each tree on the way is copied, changed, and kept for the pack."""
        *folders, name = path.split("/")
        chain = [root]
        for depth, folder in enumerate(folders):
            here = chain[-1]
            key = "/".join(folders[:depth + 1])
            if key in trees:
                child = trees[key]
            elif folder.encode() in here:
                child = _tree_at(self.repo, here[folder.encode()][1])
            else:
                child = Tree()
            chain.append(child)
        leaf = _copy(chain[-1])
        leaf.add(name.encode(), 0o100644, blob.id)
        for depth in range(len(folders), 0, -1):
            trees["/".join(folders[:depth])] = leaf
            objects.append((leaf, None))
            parent_tree = _copy(chain[depth - 1])
            parent_tree.add(folders[depth - 1].encode(), 0o040000, leaf.id)
            leaf = parent_tree
        return leaf

    def _check_out(self, touched: dict[str, Blob]) -> None:
        """Write the files the new commits changed into the work tree, and their entries into the index."""
        index = self.repo.open_index()
        for path, blob in touched.items():
            full = self.directory / path
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_bytes(blob.as_raw_string())
            entry: IndexEntry = index_entry_from_stat(os.lstat(full), blob.id)
            index[path.encode()] = entry
        index.write()


def push(directory: str | os.PathLike[str], remote: str) -> None:
    """Push branch main of the history at `directory` to `remote` (a URL or a path); ExportError naming why not.
    Git's output goes nowhere: what reaches the log is one line, with no credentials a URL may carry."""
    sink = io.BytesIO()
    try:
        porcelain.push(str(directory), remote_location=remote, refspecs=[BRANCH], outstream=sink, errstream=sink)
    except Exception as exc:  # dulwich raises its own errors, OSError and ValueError for a bad remote
        raise ExportError(f"push to {_without_userinfo(remote)} failed: {type(exc).__name__}: "
                          f"{_without_userinfo(str(exc))[:200]}") from None


def _without_userinfo(text: str) -> str:
    return re.sub(r"//[^/@\s]*@", "//", text)


def _branch_head(repo: Repo) -> bytes | None:
    return repo.refs.read_ref(BRANCH) if BRANCH in repo.refs else None


def _commit_at(repo: Repo, sha: bytes) -> Commit:
    return cast(Commit, repo[cast("ObjectID", sha)])


def _tree_at(repo: Repo, sha: bytes) -> Tree:
    return cast(Tree, repo[cast("ObjectID", sha)])


def _copy(tree: Tree) -> Tree:
    copy = Tree()
    for item in tree.items():
        copy.add(item.path, item.mode, item.sha)
    return copy


def _commit(tree_id: bytes, parent: bytes | None, version: ExportedVersion) -> Commit:
    commit = Commit()
    commit.tree = cast("ObjectID", tree_id)
    commit.parents = [cast("ObjectID", parent)] if parent else []
    commit.author = version.author.encode("utf-8")
    commit.committer = COMMITTER
    commit.author_time = int(version.authored_at.timestamp())
    commit.commit_time = int(version.committed_at.timestamp())
    commit.author_timezone = commit.commit_timezone = 0
    commit.encoding = b"UTF-8"
    commit.message = f"{version.message.rstrip()}\n\n{TRAILER}{version.version_id}\n".encode()
    return commit
