"""The ``download`` verb: fetch a URL in the guest as a user's browser would, following
redirects, and tell what was served: every hop (URL, status, where it sent us), the final URL
and host, the size and the sha256 of the body. Standard library only: runs in the guests.

Redirects are followed by hand (at most ``MAX_REDIRECTS``) so that each hop is recorded; the
body is read up to ``MAX_BYTES`` and hashed as it streams. A failure (a name that does not
resolve, a refused connection, an HTTP error, too many redirects) is a ``DownloadFailed`` with a
sentence saying which URL and why; what was learned before it is in ``.record``.
"""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

MAX_REDIRECTS = 10
MAX_BYTES = 512 * 1024 * 1024
_CHUNK = 1 << 16
_REDIRECTS = (301, 302, 303, 307, 308)


class DownloadFailed(Exception):
    """The download did not complete; ``record`` holds the hops made so far."""

    def __init__(self, message: str, record: dict[str, Any]) -> None:
        super().__init__(message)
        self.record = record


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # every 3xx comes back as an HTTPError: we follow it ourselves


def _opener(*handlers: urllib.request.BaseHandler) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect(), *handlers)


def download(url: str, timeout: float = 10.0,
             opener: urllib.request.OpenerDirector | None = None) -> dict[str, Any]:
    """Fetch ``url``; return ``{url, chain: [{url, status, location}], final_url, final_host,
    status, size, sha256, seconds}``. Raises ``DownloadFailed``."""
    opener = opener or _opener()
    start = time.monotonic()
    record: dict[str, Any] = {"url": url, "chain": []}
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        if urllib.parse.urlsplit(current).scheme not in ("http", "https"):
            raise DownloadFailed(f"{current}: only http and https URLs can be downloaded",
                                 record)
        try:
            response = opener.open(urllib.request.Request(current), timeout=timeout)
        except urllib.error.HTTPError as e:
            location = e.headers.get("Location") if e.code in _REDIRECTS else None
            record["chain"].append({"url": current, "status": e.code, "location": location})
            e.close()
            if location is None:
                raise DownloadFailed(f"{current} answered HTTP {e.code} {e.reason}",
                                     record) from e
            current = urllib.parse.urljoin(current, location)
            continue
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise DownloadFailed(f"{current} could not be fetched: {reason}", record) from e
        with response:
            digest, size = hashlib.sha256(), 0
            try:
                while chunk := response.read(_CHUNK):
                    size += len(chunk)
                    if size > MAX_BYTES:
                        raise DownloadFailed(f"{current}: more than {MAX_BYTES} bytes", record)
                    digest.update(chunk)
            except (OSError, ValueError) as e:
                raise DownloadFailed(f"{current}: the download broke off after {size} bytes: "
                                     f"{e}", record) from e
            status = response.status
        record["chain"].append({"url": current, "status": status, "location": None})
        record.update(final_url=current, final_host=urllib.parse.urlsplit(current).hostname,
                      status=status, size=size, sha256=digest.hexdigest(),
                      seconds=round(time.monotonic() - start, 3))
        return record
    raise DownloadFailed(f"{url}: more than {MAX_REDIRECTS} redirects", record)


def summary(record: dict[str, Any]) -> str:
    """One line for the step's outcome: what was served, from where, by which redirects."""
    hops = [h["url"] for h in record["chain"][:-1]]
    via = f" after {len(hops)} redirect(s) from {hops[0]}" if hops else " (not redirected)"
    return (f"downloaded {record['size']} bytes from {record['final_url']}{via}, "
            f"sha256 {record['sha256']}")
