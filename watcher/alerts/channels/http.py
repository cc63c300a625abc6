"""What the webhook, Slack and Teams channels share: one JSON POST, bounded in time and size.

The client is httpx2, the one the `openai` SDK already brings. Every request has explicit
timeouts and a total deadline; a redirect is followed only when it keeps the method and body
(307, 308) and stays on the same scheme, host and port. The URL of a Slack or Teams channel
is a secret: errors name the host only, and the URL is scrubbed from anything a receiver says.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import urlsplit

from watcher import __version__, display
from watcher.alerts.channels.base import Channel, Claimed, Payload, Sent
from watcher.config.alerts import ChannelConfig
from watcher.errors import ConfigError, DeliveryError

MAX_REDIRECTS = 3
_ANSWER_BYTES = 2048  # of a response body kept for the error message
_USER_AGENT = f"assistant-watcher/{__version__}"


class HttpChannel(Channel):
    """A channel that POSTs a JSON body to a URL from its `[[channels]]` entry."""

    @property
    def settings(self) -> ChannelConfig:
        settings = self.config.channel(self.name)
        if settings is None:  # open_channel makes a channel only for an entry of this config
            raise ConfigError(f"no [[channels]] entry called {self.name!r}")
        return settings

    @property
    def lease(self) -> timedelta:
        # Every hop of a redirect may use the whole deadline.
        return timedelta(seconds=self.settings.timeout * (MAX_REDIRECTS + 1) + 60)

    def headers(self, payload: Payload, delivery: Claimed) -> dict[str, str]:
        """Headers beyond the content type (a webhook's signature)."""
        return {}

    async def send(self, payload: Payload, delivery: Claimed) -> Sent:
        if self.name in self.sweep.broken:  # unreachable earlier in this sweep: do not wait for it again
            raise DeliveryError(self.sweep.broken[self.name])
        url = self.settings.destination()
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": _USER_AGENT,
                   **self.headers(payload, delivery)}
        try:
            await asyncio.wait_for(self._post(url, payload.body, headers), timeout=self.settings.timeout)
        except DeliveryError:
            raise
        except TimeoutError:
            self._broken(f"{_host(url)}: no answer within {self.settings.timeout:g} s")
        except Exception as exc:  # httpx2's transport errors, and anything else on the way
            self._broken(f"{_host(url)}: {_scrub(_describe(exc), url)}")
        return Sent()

    def _broken(self, message: str) -> None:
        self.sweep.broken[self.name] = message
        raise DeliveryError(message)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        client = self._client()
        target = url
        for _hop in range(MAX_REDIRECTS + 1):
            request = client.build_request("POST", target, content=body, headers=headers)
            response = await client.send(request, stream=True)
            try:
                answer = await _read_some(response)
            finally:
                await response.aclose()
            status = response.status_code
            if 200 <= status < 300:
                return
            if status in (307, 308) and _same_origin(target, response.headers.get("location", ""), url):
                target = str(response.url.join(response.headers["location"]))
                continue
            raise self._refusal(url, target, status, response.reason_phrase, response.headers.get("location"),
                                answer)
        raise DeliveryError(f"{_host(url)}: more than {MAX_REDIRECTS} redirects")

    def _refusal(self, url: str, target: str, status: int, reason: str, location: str | None,
                 answer: str) -> DeliveryError:
        where = _host(url)
        if 300 <= status < 400:
            onward = _host(location or "") or "nowhere"
            return DeliveryError(f"{where}: HTTP {status} redirect to {onward} not followed "
                                 f"(only 307/308 to the same host are)")
        said = _scrub(answer, url, target)
        detail = f": {display.header_text(said, 200)}" if said.strip() else ""
        return DeliveryError(f"{where}: HTTP {status} {display.header_text(reason, 60)}{detail}".rstrip(),
                             gone=status == 410)

    def _client(self):
        if self.sweep.http is None:
            import httpx2

            timeout = self.settings.timeout
            self.sweep.http = httpx2.AsyncClient(timeout=httpx2.Timeout(timeout, connect=timeout),
                                                 follow_redirects=False)
        return self.sweep.http


async def _read_some(response) -> str:
    """The start of a response body (a hostile receiver may send gigabytes)."""
    data = b""
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= _ANSWER_BYTES:
            break
    return data[:_ANSWER_BYTES].decode("utf-8", "replace")


def _same_origin(current: str, location: str, original: str) -> bool:
    if not location:
        return False
    here, there = urlsplit(current), urlsplit(location)
    if not there.scheme and not there.netloc:
        return True  # a relative Location stays where it is
    origin = urlsplit(original)
    return (there.scheme, there.hostname, there.port) == (origin.scheme, origin.hostname, origin.port) == \
        (here.scheme, here.hostname, here.port)


def _host(url: str) -> str:
    try:
        parts = urlsplit(url)
        return display.header_text(parts.netloc.rpartition("@")[2], 100)
    except ValueError:
        return ""


def _scrub(text: str, *urls: str) -> str:
    """`text` without the URLs (a Slack or Teams URL is a secret) nor their paths and queries."""
    for url in urls:
        parts = urlsplit(url)
        for form in sorted({url, parts.path + ("?" + parts.query if parts.query else ""), parts.path}, key=len,
                           reverse=True):
            if len(form) > 1:
                text = text.replace(form, "***")
    return text


def _describe(exc: BaseException) -> str:
    """A transport error in a few words: "connection refused", "timed out"."""
    cause = exc.__cause__ or exc.__context__
    for _depth in range(10):  # the OS's words, when a transport error wraps them
        if cause is None:
            break
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    name = type(exc).__name__
    if "Timeout" in name:
        return "timed out"
    text = str(exc).strip()
    return f"{name}: {text}" if text else name
