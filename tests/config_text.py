"""The text of a test's config: one way to write a [[targets]] block, used by every test that needs one."""

import json

KEY_ENV = "WATCHER_TEST_SANDBOX_KEY"  # the project key's variable in every test config
ADMIN_KEY_ENV = "WATCHER_TEST_ADMIN_KEY"  # the admin key's


def target_toml(url: str, *, name: str = "prod", kinds: list[str] | None = None, api_key: bool = True,
                admin_key: bool = False, extra: str = "") -> str:
    """A [[targets]] block for the server at `url` (…/v1); `kinds=None` leaves the target's default."""
    lines = ["[[targets]]", f'name = "{name}"', f'base_url = "{url}"']
    if api_key:
        lines.append(f'api_key_env = "{KEY_ENV}"')
    if admin_key:
        lines.append(f'admin_key_env = "{ADMIN_KEY_ENV}"')
    if kinds is not None:
        lines.append(f"kinds = {json.dumps(kinds)}")
    return "\n".join(lines) + "\n" + (extra + "\n" if extra else "")
