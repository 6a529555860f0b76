"""WireGuard configuration files (``wg-quick`` format) and the user-space tunnel that reads them.

A config names secrets (``PrivateKey``, ``PresharedKey``): they are held in :class:`Secret`,
whose ``repr``/``str`` hide the value, passed to ``wg setconf`` on its standard input only,
and never written to a log, the manifest or the report. Problems are ``FILE:LINE: ...`` lines.

The tunnel itself is started by ``testbed.lab.tunnels``.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

TUNNEL_PROGRAM = "wireguard-go"
TOOLS = {"wireguard-go": "wireguard-go", "wg": "wireguard-tools"}
#: keys ``wg setconf`` takes (the rest of a wg-quick file is for us: Address, DNS, ...)
WG_INTERFACE_KEYS = {"privatekey", "listenport", "fwmark"}
WG_PEER_KEYS = {"publickey", "presharedkey", "endpoint", "allowedips", "persistentkeepalive"}
QUICK_KEYS = {"address", "dns", "mtu", "table", "preup", "postup", "predown", "postdown",
              "saveconfig"}
HANDSHAKE_FRESH = 180.0  # seconds: WireGuard rekeys every 120 s while traffic flows
ENDPOINT = r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}"  # HOST:PORT


#: where wireguard-go keeps each interface's control socket: one directory for every network
#: namespace, so interface names must be unique on the machine (they carry the run's tag)
SOCKETS = Path("/var/run/wireguard")


def link_name(tag: str, role: str, index: int) -> str:
    """``tb<tag><role><index>``: a tunnel interface of run ``tag`` (``t``: the gateway's end,
    ``x``: a lab exit's), unique on the machine."""
    return f"tb{tag}{role}{index}"


def sweep(tag: str) -> list[str]:
    """Remove the control sockets run ``tag``'s tunnels left (their process was killed)."""
    out = []
    for sock in SOCKETS.glob(f"tb{tag}[tx]*.sock") if SOCKETS.is_dir() else []:
        sock.unlink(missing_ok=True)
        out.append(f"socket {sock}")
    return out


class Secret(str):
    """A string that does not show itself (a key)."""

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    @property
    def value(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True)
class Peer:
    public_key: str
    endpoint: str = ""
    allowed_ips: tuple[str, ...] = ()
    keepalive: int = 0
    preshared_key: Secret | None = None

    @property
    def endpoint_host(self) -> str:
        host = self.endpoint.rsplit(":", 1)[0] if self.endpoint else ""
        return host.strip("[]")


@dataclass(frozen=True)
class WgConfig:
    path: Path
    private_key: Secret
    addresses: tuple[str, ...]  # CIDR, the tunnel's own
    dns: tuple[str, ...]
    peers: tuple[Peer, ...]
    listen_port: int = 0
    mtu: int = 0
    problems: tuple[str, ...] = field(default=())

    def setconf(self) -> str:
        """What ``wg setconf`` reads (the secrets in clear: for its standard input only)."""
        out = ["[Interface]", f"PrivateKey = {self.private_key.value}"]
        if self.listen_port:
            out.append(f"ListenPort = {self.listen_port}")
        for p in self.peers:
            out += ["", "[Peer]", f"PublicKey = {p.public_key}"]
            if p.preshared_key is not None:
                out.append(f"PresharedKey = {p.preshared_key.value}")
            if p.endpoint:
                out.append(f"Endpoint = {p.endpoint}")
            if p.allowed_ips:
                out.append(f"AllowedIPs = {', '.join(p.allowed_ips)}")
            if p.keepalive:
                out.append(f"PersistentKeepalive = {p.keepalive}")
        return "\n".join(out) + "\n"


def _key(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except ValueError:
        return False


def read_config(path: Path, shown: str | None = None, server: bool = False) -> WgConfig:
    """Parse a wg-quick file; the problems found are in ``problems`` (``FILE:LINE: ...``),
    none of them quoting a secret. ``shown``: how the file is named in them; ``server``: the
    far end (its peers need no Endpoint)."""
    name = shown or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return WgConfig(path, Secret(""), (), (), (), problems=(f"{name}: cannot read: {e}",))
    problems: list[str] = []
    section = ""
    iface: dict[str, tuple[str, int]] = {}
    peers: list[dict[str, tuple[str, int]]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            section = m.group(1).lower()
            if section == "peer":
                peers.append({})
            elif section != "interface":
                problems.append(f"{name}:{n}: unknown section [{m.group(1)}] (expected "
                                "[Interface] or [Peer])")
            continue
        if "=" not in line:
            problems.append(f"{name}:{n}: expected KEY = VALUE")
            continue
        k, v = (s.strip() for s in line.split("=", 1))
        key = k.lower()
        if section == "interface" and key in WG_INTERFACE_KEYS | QUICK_KEYS:
            iface[key] = (v, n)
        elif section == "peer" and key in WG_PEER_KEYS:
            peers[-1][key] = (v, n)
        elif section in ("interface", "peer"):
            problems.append(f"{name}:{n}: unknown key {k!r} in [{section.capitalize()}]")
        elif section:  # inside an unknown section: said once, at its header
            continue
        else:
            problems.append(f"{name}:{n}: {k} outside [Interface] or [Peer]")
    for hook in ("preup", "postup", "predown", "postdown"):
        if hook in iface:
            problems.append(f"{name}:{iface[hook][1]}: {hook}: shell hooks are not run by "
                            "testbed (the gateway sets up routing itself); remove the line")
    private = iface.get("privatekey", ("", 0))
    if not private[0]:
        problems.append(f"{name}: [Interface] has no PrivateKey")
    elif not _key(private[0]):
        problems.append(f"{name}:{private[1]}: PrivateKey is not a WireGuard key (44 "
                        "characters of base64)")
    addresses = _list(iface.get("address", ("", 0))[0])
    if not addresses:
        problems.append(f"{name}: [Interface] has no Address (the tunnel's own address)")
    for a in addresses:
        try:
            ipaddress.ip_interface(a)
        except ValueError:
            problems.append(f"{name}:{iface['address'][1]}: Address {a!r} is not an address")
    dns = _list(iface.get("dns", ("", 0))[0])
    for d in dns:
        try:
            ipaddress.ip_address(d)
        except ValueError:
            problems.append(f"{name}:{iface['dns'][1]}: DNS {d!r} is not an IP address "
                            "(search domains are not supported)")
    if not peers:
        problems.append(f"{name}: no [Peer] section")
    built = []
    for p in peers:
        pub = p.get("publickey", ("", 0))
        if not _key(pub[0]):
            problems.append(f"{name}:{pub[1] or '?'}: [Peer] PublicKey is missing or not a "
                            "WireGuard key")
        endpoint = p.get("endpoint", ("", 0))
        if not endpoint[0] and not server:
            problems.append(f"{name}: [Peer] has no Endpoint (where the tunnel goes)")
        elif endpoint[0] and not re.fullmatch(ENDPOINT, endpoint[0]):
            problems.append(f"{name}:{endpoint[1]}: Endpoint {endpoint[0]!r} is not HOST:PORT")
        psk = p.get("presharedkey")
        if psk is not None and not _key(psk[0]):
            problems.append(f"{name}:{psk[1]}: PresharedKey is not a WireGuard key")
        keep = p.get("persistentkeepalive", ("0", 0))
        built.append(Peer(public_key=pub[0], endpoint=endpoint[0],
                          allowed_ips=_list(p.get("allowedips", ("", 0))[0]),
                          keepalive=int(keep[0]) if keep[0].isdigit() else 0,
                          preshared_key=Secret(psk[0]) if psk else None))
    port = iface.get("listenport", ("0", 0))[0]
    mtu = iface.get("mtu", ("0", 0))[0]
    return WgConfig(path=path, private_key=Secret(private[0]), addresses=addresses,
                    dns=dns, peers=tuple(built),
                    listen_port=int(port) if port.isdigit() else 0,
                    mtu=int(mtu) if mtu.isdigit() else 0, problems=tuple(problems))


def _list(value: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in value.split(",") if x.strip())
