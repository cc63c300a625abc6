"""Skills (`/v1/skills`) and their versions (`/v1/skills/{skill_id}/versions`).

A skill is created from uploaded files (a SKILL.md whose front matter names and
describes it, or a zip holding one); that upload is version 1. Each new upload is a
new version and moves the skill's `latest_version`; `default_version` (the live
one) moves only when an update, or a version created with `default=true`, says so.
"""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING

from watcher.sandbox.dice import Dice
from watcher.sandbox.family import Family
from watcher.sandbox.wire import ApiError, known_fields, missing, not_found, require

if TYPE_CHECKING:
    from watcher.sandbox.account import Account

_SKILLS = (
    ("invoice-reconciliation", "Matches bank statement lines to open invoices and drafts the journal entries."),
    ("refund-policy", "Applies the Acme refund and store-credit policy to an order, with the approval rules."),
    ("pdf-report-builder", "Turns a metrics table into a branded PDF report with charts and a summary page."),
    ("sql-analyst", "Writes and checks read-only SQL against the analytics warehouse schema."),
    ("contract-redliner", "Compares a vendor contract with the legal playbook and proposes redlines."),
    ("release-notes", "Writes customer-facing release notes from merged pull requests and ticket titles."),
    ("incident-postmortem", "Drafts a blameless postmortem from an incident channel's timeline."),
    ("brand-voice", "Rewrites text in the Acme brand voice: short sentences, no jargon, no emoji."),
    ("spreadsheet-cleanup", "Normalizes messy CSV exports: dates, currencies, duplicate rows and headers."),
    ("onboarding-checklist", "Builds a new hire's first-week checklist from the team's templates."),
)
_CHANGES = ("tightened the output format", "added a worked example", "covers EUR and GBP", "handles empty input",
            "cites the source rows", "shorter answers", "new approval threshold", "fixed the date parsing")


class Skills(Family):
    name, object, prefix = "skills", "skill", "skill_"

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        slug, description = _SKILLS[index % len(_SKILLS)]
        if index >= len(_SKILLS):
            slug = f"{slug}-{index // len(_SKILLS) + 1}"
        return {"default_version": "1", "description": description, "latest_version": "1", "name": slug}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        known_fields(body, ("files",))
        name, description = _front_matter(body.get("files"))
        return {"default_version": "1", "description": description, "latest_version": "1", "name": name}

    def created(self, obj: dict, account: Account, parent: str | None) -> dict:
        versions = account.kind("skill_versions")
        account.add(versions, {"description": obj["description"], "name": obj["name"], "skill_id": obj["id"],
                               "version": "1"}, obj["id"])
        return obj

    def update(self, current: dict, body: dict, account: Account) -> dict:
        known_fields(body, ("default_version",))
        if "default_version" not in body:
            raise missing("default_version")
        version = str(body["default_version"])
        versions = account.existing("skill_versions", current["id"])
        require(versions is not None and versions.lookup(version, "version") is not None,
                f"Skill '{current['id']}' has no version '{version}'.", "default_version")
        return {"default_version": version}


class SkillVersions(Family):
    name, object, prefix = "skill_versions", "skill.version", "skillver_"
    label = "skill version"
    id_field = "version"
    ops = frozenset({"list", "retrieve", "create", "delete"})

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        skills = account.existing("skills")
        if skills is None or parent is None:
            raise ValueError("skill_versions: a version is seeded under a seeded skill")
        skill = skills.by_id[parent]
        note = "first version" if index == 0 else dice.pick(_CHANGES)
        return {"description": f"{skill['description']} ({note})", "name": skill["name"], "skill_id": parent,
                "version": str(index + 1)}

    def after_seed(self, account: Account) -> None:
        """Point each seeded skill at its seeded versions; every third one stays on an older default."""
        col = account.existing("skills")
        if col is None:
            return
        for index, skill in enumerate(col.ordered()):
            versions = account.existing(self.name, skill["id"])
            latest = max((int(v["version"]) for v in versions.ordered()), default=1) if versions else 1
            default = max(1, latest - 1) if index % 3 == 2 else latest
            col.replace({**skill, "latest_version": str(latest), "default_version": str(default)})

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        known_fields(body, ("files", "default"))
        name, description = _front_matter(body.get("files"))
        skills = account.kind("skills")
        col = account.existing(skills.name)
        if col is None:  # no skill yet: the 404 col.find gives for a missing one
            raise not_found(skills.family.what, parent or "")
        skill = col.find(parent or "")
        version = str(int(skill["latest_version"]) + 1)
        fields = {"latest_version": version}
        if str(body.get("default", "false")).lower() in ("true", "1"):
            fields["default_version"] = version
        account.change(skills, col, skill, fields)
        return {"description": description, "name": name, "skill_id": skill["id"], "version": version}

    def deleted(self, obj: dict) -> dict:
        return {"id": obj["id"], "object": "skill.version.deleted", "deleted": True, "version": obj["version"]}

    def removing(self, obj: dict, account: Account, parent: str | None) -> None:
        """The live version cannot go; deleting the latest moves latest_version back."""
        skills = account.kind("skills")
        col = account.existing(skills.name)
        skill = col.lookup(parent or "") if col else None
        if col is None or skill is None:
            return  # the whole skill is being deleted
        require(skill["default_version"] != obj["version"], "Cannot delete the default version of a skill; "
                "set another default_version first.", "version")
        versions = account.existing(self.name, parent)
        remaining = [int(v["version"]) for v in versions.ordered() if v is not obj] if versions else []
        if skill["latest_version"] == obj["version"] and remaining:
            account.change(skills, col, skill, {"latest_version": str(max(remaining))})


def _front_matter(files: object) -> tuple[str, str]:
    """The name and description in the uploaded SKILL.md (plain or inside a zip)."""
    if not files:
        raise missing("files")
    text = _skill_md(files)
    if text is None:
        raise ApiError(400, "The upload must contain a SKILL.md file.", param="files")
    fields: dict[str, str] = {}
    lines = text.splitlines()
    if lines and lines[0].strip() == "---":
        for line in lines[1:]:
            if line.strip() == "---":
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip().strip("\"'")
    require(bool(fields.get("name")) and bool(fields.get("description")),
            "SKILL.md must start with front matter giving 'name' and 'description'.", "files")
    return fields["name"], fields["description"]


def _skill_md(files: object) -> str | None:
    for filename, data in files if isinstance(files, list) else ():
        if filename.rsplit("/", 1)[-1] == "SKILL.md":
            return data.decode("utf-8", "replace")
        if filename.endswith(".zip"):
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    inside = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "SKILL.md"]
                    if inside:
                        return archive.read(inside[0]).decode("utf-8", "replace")
            except zipfile.BadZipFile:
                raise ApiError(400, f"'{filename[:80]}' is not a valid zip file.", param="files") from None
    return None
