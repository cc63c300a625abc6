"""Secrets known by their shape, wherever they stand (DESIGN "Redaction"): the credentials inside a URL
(its userinfo, and the values of query parameters named like credentials) and values shaped like
well-known keys (OpenAI, Azure, AWS, GitHub, Slack, JWTs, PEM private keys), under whatever key.

`scrubbed(text, mask)` is `text` with each such secret replaced where it stands by `mask(secret)`,
so the rest stays readable; text with none comes back unchanged. No I/O, no state.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Query parameters whose values are credentials (names lower-cased); also any name ending like one.
CREDENTIAL_PARAMS = frozenset({
    "token", "key", "sig", "signature", "secret", "password", "passwd", "pwd", "auth", "code",
    "access_token", "refresh_token", "id_token", "api_key", "apikey", "api-key", "client_secret",
    "subscription-key", "x-amz-signature", "x-amz-security-token", "x-amz-credential", "x-goog-signature",
})
_CREDENTIAL_SUFFIXES = ("_token", "_secret", "_password", "_key", "-key", "-token", "-secret")

_KEY_SHAPES = (
    r"sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}",  # OpenAI keys (and the many servers copying them)
    r"(?:AKIA|ASIA)[0-9A-Z]{16}",  # AWS access key ids
    r"[A-Za-z0-9]{52}JQQJ9[A-Za-z0-9]{27}",  # Azure AI services keys (84 characters)
    r"(?:AccountKey|SharedAccessKey)=[A-Za-z0-9+/=]{20,}",  # Azure storage and Service Bus connection strings
    r"gh[pousr]_[A-Za-z0-9]{36,}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{22,}",  # GitHub fine-grained tokens
    r"xox[abposr]-[A-Za-z0-9-]{10,}",  # Slack tokens
    r"(?<=hooks\.slack\.com/services/)[A-Za-z0-9_/-]{10,}",  # a Slack webhook URL's path is its secret
    r"whsec_[A-Za-z0-9+/=]{20,}",  # Standard Webhooks signing secrets
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWTs
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----",  # PEM private keys
)
_KEYS = re.compile(r"(?<![A-Za-z0-9_-])(?:" + "|".join(_KEY_SHAPES) + r")")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>\\]+")

Mask = Callable[[str], str]


def scrubbed(text: str, mask: Mask) -> str:
    """`text` with every credential it holds (see the module) replaced by `mask(credential)`."""
    if "://" in text:
        text = _URL.sub(lambda url: _url_scrubbed(url.group(), mask), text)
    return _KEYS.sub(lambda key: mask(key.group()), text) if _KEYS.search(text) else text


def _url_scrubbed(url: str, mask: Mask) -> str:
    """One URL with its userinfo and the values of its credential parameters masked where they stand."""
    scheme, _, rest = url.partition("://")
    end = min((at for at in (rest.find("/"), rest.find("?"), rest.find("#")) if at >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, host = authority.rpartition("@")
    if at and userinfo:
        authority = f"{mask(userinfo)}@{host}"
    path, question, query = tail.partition("?")
    if question:
        query, hash_mark, fragment = query.partition("#")
        query = "&".join(_parameter_scrubbed(part, mask) for part in query.split("&")) + hash_mark + fragment
    return f"{scheme}://{authority}{path}{question}{query}"


def _parameter_scrubbed(part: str, mask: Mask) -> str:
    name, equals, value = part.partition("=")
    lowered = name.lower()
    if equals and value and (lowered in CREDENTIAL_PARAMS or lowered.endswith(_CREDENTIAL_SUFFIXES)):
        return f"{name}={mask(value)}"
    return part
