"""The simulated internet's download sites: what a server answers a client depends on where
the client appears to be.

A row of the internet data file with ``role: download`` serves every path with the body
``download_body(host, path)`` (so a scenario can name its sha256); a row with ``redirects``
(``{CN: skype.tom.lab.example}``) first sends a client whose egress address the map places in
one of those countries to the same path on the named host, with a 302, as www.skype.com sent
users in China to skype.tom.com (GreatFire, 2013). The egress address is the request's source
address as the server sees it: the gateway's for the lab's default route, a lab VPN exit's for
a route through it.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from testbed.lab.internet_map import InternetMap

DOWNLOAD_ROLE = "download"


class Answer(NamedTuple):
    status: int
    body: bytes
    location: str | None = None


def download_body(host: str, path: str) -> bytes:
    """What a download site serves for ``path``: a stand-in for the build it would hand out."""
    return f"lab download {host.lower()}{path}\n".encode()


def download_sha256(host: str, path: str) -> str:
    return hashlib.sha256(download_body(host, path)).hexdigest()


def site_answer(internet: InternetMap | None, host: str, path: str, client: str,
                scheme: str = "http") -> Answer | None:
    """The answer of the download site named ``host`` to ``client``; None when ``host`` is
    not a download site (or there is no map)."""
    if internet is None:
        return None
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host  # Host: name[:port]
    row = internet.by_name(name)
    if row is None or (row.role != DOWNLOAD_ROLE and not row.redirects):
        return None
    target = row.redirects.get(internet.egress_country(client) or "")
    if target is not None:
        return Answer(302, b"", f"{scheme}://{target}{path}")
    return Answer(200, download_body(name, path))
