"""The `openai` SDK at the edge: a client for each of a target's keys, and one request through it.

Everything here turns the SDK's exceptions into one-line `SourceError`s that name what failed
and never carry a key (servers echo keys back, masked or not, in their messages).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import warnings
from typing import TYPE_CHECKING, Any

from watcher.errors import ConfigError, KindNotServed, SourceError

if TYPE_CHECKING:
    import openai

    from watcher.config.targets import TargetConfig

_KEY_LIKE = re.compile(r"\b(sk|sess|key)[-_][A-Za-z0-9_\-*.]{3,}")  # keys a server might echo back, masked or not
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # characters that must not reach a terminal, a log or an id


def make_client(target: TargetConfig) -> openai.OpenAI:
    """An SDK client for `target`'s project key (Azure: its `api-key`); its key is read now."""
    import openai

    common: dict[str, Any] = {"timeout": target.timeout, "max_retries": 2, "http_client": _http_client(target)}
    if target.provider == "azure":
        if target.azure_endpoint is None:  # TargetConfig requires it of an Azure target
            raise ConfigError(f"target {target.name}: provider = \"azure\" needs azure_endpoint")
        return openai.AzureOpenAI(api_key=target.api_key(), azure_endpoint=target.azure_endpoint,
                                  api_version=target.api_version, **common)
    return openai.OpenAI(api_key=target.api_key(), admin_api_key=None, base_url=target.base_url,
                         organization=target.organization, project=target.project, **common)


def make_admin_client(target: TargetConfig) -> openai.OpenAI:
    """An SDK client that holds only `target`'s admin key, sent only to organization endpoints."""
    import openai

    return openai.OpenAI(api_key="", admin_api_key=target.admin_key(), base_url=target.base_url,
                         organization=target.organization, timeout=target.timeout, max_retries=2,
                         http_client=_http_client(target))


def _http_client(target: TargetConfig):
    """The SDK's own HTTP client with its defaults, over this process's one TLS context."""
    import openai

    return openai.DefaultHttpxClient(timeout=target.timeout, verify=_tls_context())


@functools.cache
def _tls_context():
    # Loading the CA store takes ~20 ms, as long as a whole unchanged poll of 1,000 objects: once a process.
    # It is the one the SDK would build (SSL_CERT_FILE and SSL_CERT_DIR are honoured); a daemon sees a new CA
    # store after a restart.
    import httpx2

    return httpx2.create_ssl_context()


def parse_json(data: bytes) -> Any:
    """The answer parsed: orjson when it can (a third of json's time), else the standard library's reading,
    which accepts what some servers send and orjson refuses (NaN). Structure nested past PARSE_DEPTH levels
    is read as a fingerprint of its bytes (see `fold_deep`), so no nesting stops the objects beside it."""
    import orjson

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except RecursionError:
        return json.loads(fold_deep(data, PARSE_DEPTH))


PARSE_DEPTH = 200  # past the record's own folding depth (watcher.compare.normalize.MAX_DEPTH), below any parser's
_TOKENS = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}]')  # a JSON string (skipped whole), or a bracket


def fold_deep(data: bytes, depth: int) -> bytes:
    """`data` with each array or object that opens past `depth` levels replaced by a JSON string naming the
    sha256 of its bytes: an edit inside it still changes the answer. Iterative: any nesting."""
    pieces, level, start, copied = [], 0, 0, 0
    for token in _TOKENS.finditer(data):
        char = token.group()[:1]
        if char in b"[{":
            level += 1
            if level == depth + 1:
                start = token.start()
        elif char in b"]}":
            if level == depth + 1:
                digest = hashlib.sha256(data[start:token.end()]).hexdigest()[:16]
                pieces += [data[copied:start], b'"nested deeper than %d levels: sha256 %s"' % (depth, digest.encode())]
                copied = token.end()
            level -= 1
    pieces.append(data[copied:])
    return b"".join(pieces)


def response_type():
    import httpx2

    return httpx2.Response


class Unreachable(SourceError):
    """The server could not be reached at all (refused, no route, DNS): the next kind would fare no better.

    `reason` names the server (scheme, host and port, no path) and the cause, for the kinds not asked after it.
    """

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason


def request(where: str, secrets: list[str], call, *, not_served: bool = False):
    """Run one SDK call, turning its exceptions into one-line SourceErrors without any key.

    A 404 is KindNotServed only when `not_served` (the first page of a listing); anywhere
    else it is an ordinary failure (a deleted object, a cursor the server forgot).
    """
    import openai

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return call()
        except openai.NotFoundError as exc:
            error = KindNotServed if not_served else SourceError
            raise error(f"{where}: HTTP 404: {_server_message(exc, secrets)}", status=404) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            target = where.split("/", 1)[0]
            raise SourceError(f"{where}: authentication failed for target {target} "
                              f"(HTTP {exc.status_code}): {_server_message(exc, secrets)}",
                              status=exc.status_code) from None
        except openai.APIStatusError as exc:
            raise SourceError(f"{where}: HTTP {exc.status_code}: {_server_message(exc, secrets)}",
                              status=exc.status_code) from None
        except openai.APITimeoutError:
            raise SourceError(f"{where}: the server did not answer in time") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            url = scrub(str(getattr(exc.request, "url", "") or ""), secrets).split("?")[0]
            scheme, _, rest = url.partition("://")
            server = f"{scheme}://{rest.split('/', 1)[0]}" if rest else url
            because = scrub(str(cause), secrets)
            raise Unreachable(f"{where}: cannot connect to {url}: {because}",
                              reason=f"cannot connect to {server}: {because}") from None


def _server_message(exc, secrets: list[str]) -> str:
    body = exc.body
    message = None
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else None
    if not message:
        message = exc.response.reason_phrase if exc.response is not None else str(exc)
    return scrub(str(message), secrets)[:300] or "no message"  # scrubbed whole, then cut: a cut key is not found


def scrub(text: str, secrets: list[str]) -> str:
    """`text` without the keys, without anything shaped like a key (servers echo masked keys), on one line."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return CONTROL.sub(" ", _KEY_LIKE.sub("[redacted]", text))
