"""The `[[targets]]` section: one account to watch, the kinds its keys can read, and
`[target_defaults]`, the keys every target inherits unless it sets its own."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from watcher.config.fields import IgnoreRule, Interval, KindName, PositiveDuration, Section, Size
from watcher.config.values import NAME_PATTERN, did_you_mean, read_secret, toml_value
from watcher.errors import ConfigError
from watcher.kinds import registry

OPENAI_BASE_URL = "https://api.openai.com/v1"


class TargetConfig(Section):
    """One `[[targets]]` entry: an account to watch, how to reach it, and what to record of it."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=NAME_PATTERN)]
    # Default: every kind its keys can read (see `watcher.kinds`), set after validation.
    kinds: list[KindName] = Field(default_factory=list)
    provider: Literal["openai", "azure"] = "openai"
    base_url: str = OPENAI_BASE_URL
    azure_endpoint: str | None = None
    api_version: str | None = None
    api_key_env: str | None = None
    api_key_file: str | None = None
    admin_key_env: str | None = None
    admin_key_file: str | None = None
    organization: str | None = None
    project: str | None = None
    ignore: list[IgnoreRule] = Field(default_factory=list)
    redact: list[IgnoreRule] = Field(default_factory=list)
    interval: Interval | None = None
    timeout: PositiveDuration = Field(default=60.0)
    max_answer_size: Size = Field(default=64 * 1000**2)
    # false: not polled, its record kept and readable.
    enabled: bool = True
    # Self-heal: an out-of-band modification is put back (true: every writable kind; or the kinds listed).
    heal: bool | list[KindName] = False
    heal_max: Annotated[int, Field(ge=1, le=1000)] = 10  # objects put back in one poll, at most
    heal_backoff: PositiveDuration = Field(default=3600.0)  # put back twice within it: left alone, "fighting"

    def heals(self, kind: str) -> bool:
        """True when out-of-band modifications of `kind` on this target are put back."""
        return kind in self.heal if isinstance(self.heal, list) else bool(self.heal)

    @model_validator(mode="after")
    def _consistent(self) -> TargetConfig:
        if self.api_key_env and self.api_key_file:
            raise ValueError("set api_key_env or api_key_file, not both")
        if self.admin_key_env and self.admin_key_file:
            raise ValueError("set admin_key_env or admin_key_file, not both")
        if self.provider == "azure":
            self._check_azure()
        elif self.azure_endpoint or self.api_version:
            raise ValueError("azure_endpoint and api_version need provider = \"azure\"")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url {self.base_url!r} must start with http:// or https://")
        if not self.kinds:
            object.__setattr__(self, "kinds", self._default_kinds())
        self._check_keys_for_kinds()
        return self

    def _check_azure(self) -> None:
        if "base_url" in self.model_fields_set:
            raise ValueError("an Azure target takes azure_endpoint, not base_url")
        if not self.azure_endpoint:
            raise ValueError("provider = \"azure\" needs azure_endpoint (https://NAME.openai.azure.com)")
        if not self.azure_endpoint.startswith(("http://", "https://")):
            raise ValueError(f"azure_endpoint {self.azure_endpoint!r} must start with https://")
        if not self.api_version:
            raise ValueError("provider = \"azure\" needs api_version (such as \"2025-04-01-preview\")")
        if self.admin_key_env or self.admin_key_file:
            raise ValueError("an Azure target has no organization plane: drop admin_key_env/admin_key_file")
        # The record keeps where a target's objects live.
        object.__setattr__(self, "base_url", self.azure_endpoint.rstrip("/") + "/openai")

    @property
    def has_project_key(self) -> bool:
        """A project key is configured, or implied (OPENAI_API_KEY) when no admin key is either."""
        return bool(self.api_key_env or self.api_key_file or not self.has_admin_key)

    @property
    def has_admin_key(self) -> bool:
        return bool(self.admin_key_env or self.admin_key_file)

    def _default_kinds(self) -> list[str]:
        return registry.for_target(self.provider, project_key=self.has_project_key, admin_key=self.has_admin_key)

    def _check_keys_for_kinds(self) -> None:
        for name in self.kinds:
            kind = registry.get(name)
            if self.provider == "azure" and not kind.azure:
                raise ValueError(f"kinds: Azure OpenAI does not serve {name} (it serves "
                                 f"{', '.join(k.name for k in registry.all_kinds() if k.azure)})")
            if kind.key == registry.ADMIN and not self.has_admin_key:
                raise ValueError(f"kinds: {name} needs an admin key (admin_key_env or admin_key_file)")
            if kind.key == registry.PROJECT and not self.has_project_key:
                raise ValueError(f"kinds: {name} needs a project key (api_key_env or api_key_file)")

    def api_key(self) -> str:
        """The API key, read now from its environment variable or file."""
        env = self.api_key_env or (None if self.api_key_file else "OPENAI_API_KEY")
        return read_secret(f"targets.{self.name}", env, self.api_key_file)

    def admin_key(self) -> str:
        """The admin key, read now from its environment variable or file."""
        return read_secret(f"targets.{self.name}.admin_key", self.admin_key_env, self.admin_key_file)

    def read_keys(self) -> None:
        """Read every key this target's kinds need: a missing one is a ConfigError now, not mid-poll."""
        if any(registry.get(k).key == registry.PROJECT for k in self.kinds):
            self.api_key()
        if any(registry.get(k).key == registry.ADMIN for k in self.kinds):
            self.admin_key()

    def secrets(self) -> list[str]:
        """The keys' values, for scrubbing from error messages (those that can be read)."""
        values = []
        for read, wanted in ((self.api_key, self.has_project_key), (self.admin_key, self.has_admin_key)):
            if wanted:
                try:
                    values.append(read())
                except ConfigError:
                    pass
        return values


def with_target_defaults(data: dict, source: str) -> tuple[dict, dict[int, set[str]]]:
    """`data` with `[target_defaults]` merged under every `[[targets]]` (a target's own keys win),
    and which keys each target inherited (an error in one names `target_defaults.KEY`)."""
    defaults = data.pop("target_defaults", None)
    if defaults is None:
        return data, {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{source}: target_defaults: expected a table (got {toml_value(defaults)})")
    for key in defaults:
        if key == "name":
            raise ConfigError(f"{source}: target_defaults.name: every target names itself")
        if key not in TargetConfig.model_fields:
            raise ConfigError(f"{source}: target_defaults.{key}: unknown key"
                              f"{did_you_mean(key, list(TargetConfig.model_fields))}")
    targets = data.get("targets")
    if not isinstance(targets, list):
        return data, {}
    inherited = {i: set(defaults) - set(t) for i, t in enumerate(targets) if isinstance(t, dict)}
    merged = [{**defaults, **t} if isinstance(t, dict) else t for t in targets]
    return {**data, "targets": merged}, inherited

