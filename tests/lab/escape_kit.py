"""Escape probes: listeners that count what reaches them, and probes a guest runs against them.

    python escape_kit.py listen OUT.json TCP_PORTS UDP_PORTS   (until SIGTERM; counts bytes)
    python escape_kit.py probe OUT.json TARGETS.json           (inside a guest, as its app)

A probe is (kind, address, port): ``tcp`` connects and sends a marker, ``udp`` sends one and
waits for the echo, ``icmp`` pings. The probe run also tries what a hostile guest would do to
get around the management filter — add a route to each target through ``mgmt0``, flush the
filter, enter PID 1's network namespace — and probes again after. Standard library only: the
probe part runs on the guest's Python, passed as ``python -c``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

MARKER = b"ESCAPE-PROBE"
TIMEOUT = 1.5
# what a hostile guest tries between the two rounds of probes (each must fail in a sandbox)
ATTACKS = {
    "route via mgmt0": "ip route add {address}/32 dev mgmt0",
    "flush the filter": "/usr/sbin/nft flush ruleset",
    "enter PID 1's network": "nsenter --net=/proc/1/ns/net true",
    "a new network namespace": "unshare --net true",
    "an address on mgmt0": "ip addr add 192.0.2.99/32 dev mgmt0",
    "enter a host process's network": "nsenter --net=/proc/{pid}/ns/net true",
}


def foreign_pid() -> str:
    """A process this one can see in another network namespace (the host's), if any."""
    mine = os.readlink("/proc/self/ns/net")
    for pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
        try:
            if os.readlink(f"/proc/{pid}/ns/net") != mine:
                return pid
        except OSError:
            continue
    return ""


def listen(out: str, tcp_ports: list[int], udp_ports: list[int]) -> None:
    received: dict[str, int] = {}
    socks: dict[socket.socket, tuple[str, int]] = {}
    for port in tcp_ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(64)
        socks[s] = ("tcp", port)
    for port in udp_ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
        socks[s] = ("udp", port)
    conns: dict[socket.socket, str] = {}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    def save() -> None:
        tmp = out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(received, f)
        os.replace(tmp, out)

    save()
    while not stop:
        ready, _, _ = select.select([*socks, *conns], [], [], 0.2)
        for s in ready:
            if s in conns:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    conns.pop(s)
                    s.close()
                    continue
                received[conns[s]] = received.get(conns[s], 0) + len(data)
            elif socks[s][0] == "tcp":
                c, peer = s.accept()
                key = f"tcp:{socks[s][1]} from {peer[0]}"
                received[key] = received.get(key, 0)  # a connection is an escape too
                conns[c] = key
            else:
                data, peer = s.recvfrom(65536)
                key = f"udp:{socks[s][1]} from {peer[0]}"
                received[key] = received.get(key, 0) + len(data)
                s.sendto(data, peer)
        save()
    save()


def _icmp(address: str) -> str:
    kinds = [(socket.SOCK_DGRAM, "unprivileged ping socket"), (socket.SOCK_RAW, "raw socket")]
    for kind, name in kinds:
        try:
            s = socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP)
        except OSError as e:
            last = f"blocked: no {name} ({e.strerror})"
            continue
        with s:
            s.settimeout(TIMEOUT)
            body = struct.pack("!BBHHH", 8, 0, 0, os.getpid() & 0xFFFF, 1) + MARKER
            total = sum(struct.unpack(f"!{len(body) // 2}H", body))
            total = (total >> 16) + (total & 0xFFFF)
            checksum = ~(total + (total >> 16)) & 0xFFFF
            body = body[:2] + struct.pack("!H", checksum) + body[4:]
            try:
                s.sendto(body, (address, 0))
                deadline = time.monotonic() + TIMEOUT
                while time.monotonic() < deadline:  # a raw socket sees every ICMP packet
                    data, peer = s.recvfrom(2048)
                    if kind == socket.SOCK_RAW:
                        data = data[(data[0] & 0x0F) * 4:]
                    if peer[0] == address and data[:1] == b"\0" and MARKER in data:
                        return "ESCAPED: echo reply"
                return "blocked: no echo reply"
            except OSError as e:
                return f"blocked: {e.strerror or type(e).__name__}"
    return last


def probe_one(kind: str, address: str, port: int) -> str:
    if kind == "icmp":
        return _icmp(address)
    if kind == "tcp":
        try:
            with socket.create_connection((address, port), timeout=TIMEOUT) as s:
                s.sendall(MARKER)
                return "ESCAPED: connected and sent"
        except OSError as e:
            return f"blocked: {e.strerror or type(e).__name__}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(TIMEOUT)
        try:
            s.sendto(MARKER, (address, port))
            s.recvfrom(1024)
            return "ESCAPED: echoed"
        except OSError as e:
            return f"blocked: {e.strerror or type(e).__name__}"


def probe(out: str, targets_json: str) -> None:
    targets = json.loads(targets_json)
    result: dict[str, object] = {"uid": os.getuid(), "rounds": [], "attacks": {}}
    rounds: list[dict[str, str]] = []
    for round_name in ("as started", "after the attacks"):
        with ThreadPoolExecutor(max_workers=16) as pool:  # each blocked probe waits TIMEOUT
            found = list(pool.map(lambda t: probe_one(t[0], t[1], t[2]), targets))
        outcomes = {f"{k} {lb} {a}:{p}": o
                    for (k, a, p, lb), o in zip(targets, found, strict=True)}
        rounds.append({"round": round_name, **outcomes})  # type: ignore[dict-item]
        if round_name == "as started":
            attacks = {}
            pid = foreign_pid()
            result["visible processes"] = sum(p.isdigit() for p in os.listdir("/proc"))
            for cmd in ATTACKS.values():
                if "{pid}" in cmd and not pid:
                    attacks[cmd] = "not tried: no process of another namespace is visible"
                    continue
                for address in sorted({t[1] for t in targets}) if "{address}" in cmd else [""]:
                    line = cmd.format(address=address, pid=pid)
                    try:
                        res = subprocess.run(line.split(), capture_output=True, text=True,
                                             timeout=10)
                        attacks[line] = (f"exit {res.returncode}: "
                                         f"{(res.stderr or res.stdout).strip()[:120]}")
                    except OSError as e:
                        attacks[line] = f"could not run: {e.strerror}"
            result["attacks"] = attacks
    result["rounds"] = rounds
    with open(out + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(out + ".tmp", out)


def free_ports(kind: int, n: int) -> list[int]:
    out: list[int] = []
    while len(out) < n:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("0.0.0.0", 0))
            port = int(s.getsockname()[1])
        if port not in out:
            out.append(port)
    return out


def host_addresses() -> list[str]:
    """The machine's own addresses outside the lab (its real interfaces)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        words = line.split()
        if len(words) > 3 and not words[1].startswith("tb"):
            found.append(words[3].split("/")[0])
    return found


def start_listener(out: str, tcp: list[int], udp: list[int],
                   ns: str | None = None) -> subprocess.Popen:
    cmd = ([ "ip", "netns", "exec", ns] if ns else []) + [
        sys.executable, __file__, "listen", out, ",".join(map(str, tcp)),
        ",".join(map(str, udp))]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    wait_for(out, 10)
    return proc


def stop_listener(proc: subprocess.Popen, out: str) -> dict[str, int]:
    proc.terminate()
    proc.wait(timeout=10)
    return wait_for(out, 5)


def wait_for(path: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(0.2)
    raise AssertionError(f"{path} did not appear within {timeout} s")


if __name__ == "__main__":
    if sys.argv[1] == "listen":
        listen(sys.argv[2], [int(p) for p in sys.argv[3].split(",") if p],
               [int(p) for p in sys.argv[4].split(",") if p])
    else:
        probe(sys.argv[2], sys.argv[3])


def probe_round(pool, alpha, beta_ns: str, name: str) -> dict:  # type: ignore[no-untyped-def]
    """One round of probes from guest ``alpha`` (index 0 of ``pool``; index 1 is the other
    guest, in ``beta_ns``): every target, with listeners on the host and in the other guest.
    Returns the probes' outcomes and what each listener received."""
    tcp = free_ports(socket.SOCK_STREAM, 3)
    udp = free_ports(socket.SOCK_DGRAM, 2)
    host_a, _ = pool._mgmt_subnet(0)
    host_b, guest_b = pool._mgmt_subnet(1)
    beta_eth0 = "10.77.0.11"
    targets = [
        ["tcp", host_a, tcp[0], "host-mgmt"], ["tcp", host_a, tcp[1], "host-mgmt"],
        ["udp", host_a, udp[0], "host-mgmt"], ["icmp", host_a, 0, "host-mgmt"],
        ["tcp", host_b, tcp[0], "host-end-of-other-guest-link"],
        ["udp", host_b, udp[0], "host-end-of-other-guest-link"],
        ["icmp", host_b, 0, "host-end-of-other-guest-link"],
        ["tcp", guest_b, tcp[0], "other-guest-mgmt"],
        ["udp", guest_b, udp[0], "other-guest-mgmt"],
        ["icmp", guest_b, 0, "other-guest-mgmt"],
        ["tcp", beta_eth0, tcp[1], "other-guest-eth0"],
        ["udp", beta_eth0, udp[1], "other-guest-eth0"],
        ["icmp", beta_eth0, 0, "other-guest-eth0"],
    ]
    for address in host_addresses():
        targets += [["tcp", address, tcp[2], "host-real"], ["udp", address, udp[1], "host-real"],
                    ["icmp", address, 0, "host-real"]]
    work = str(pool.workdir)
    host_out, beta_out = f"{work}/{name}-host.json", f"{work}/{name}-beta.json"
    host = start_listener(host_out, tcp, udp)
    beta = start_listener(beta_out, tcp, udp, ns=beta_ns)
    try:
        with open(__file__) as f:
            source = f.read()
        argv = [alpha.env.get("python", "python3"), "-c", source, "probe", f"{name}.json",
                json.dumps(targets)]
        answer = alpha.agent.run_steps([{"run": argv}], {})
        assert answer["ok"], f"the probe did not start in the guest: {answer['error']}"
        try:
            probes = wait_for(str(alpha.workdir / f"{name}.json"), 300)
        except AssertionError as e:
            logs = {p.name: p.read_text()[-2000:] for p in alpha.workdir.glob("app-*.log")}
            raise AssertionError(f"{e}; the guest's app logs: {logs}") from None
    finally:
        received = {"host": stop_listener(host, host_out),
                    "other guest": stop_listener(beta, beta_out)}
    return {"targets": targets, "probes": probes, "received": received}


def escapes(result: dict) -> dict[str, int]:
    """Bytes and connections that reached a listener, and probes that got through."""
    got = [n for side in result["received"].values() for n in side.values()]
    outcomes = [v for r in result["probes"]["rounds"] for k, v in r.items() if k != "round"]
    return {"bytes": sum(got), "connections or datagrams": len(got),
            "probes through": sum(o.startswith("ESCAPED") for o in outcomes),
            "probes tried": len(outcomes)}
