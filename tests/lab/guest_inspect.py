"""What a program in a lab guest can see and do, written as JSON to the file named by argv[1].

Run inside a guest as its app (``python -c``), with the other guest's variant name and a
text that only the gateway's CA holds as argv[2] and argv[3]. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys


def status() -> dict[str, str]:
    with open("/proc/self/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def readable(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.read(64)
        return "readable"
    except OSError as e:
        return e.strerror or type(e).__name__


def main() -> None:
    out, other, ca_marker = sys.argv[1], sys.argv[2], sys.argv[3]
    me = os.environ.get("USER", "")
    st = status()
    with open(f"/tmp/mark-{os.getpid()}", "w") as f:
        f.write("mine")
    parent = os.getppid()
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    bundle = open("/etc/ssl/certs/ca-certificates.crt").read()
    result = {
        "uid": os.getuid(), "euid": os.geteuid(), "user": me,
        "CapEff": st.get("CapEff"), "CapBnd": st.get("CapBnd"), "CapPrm": st.get("CapPrm"),
        "NoNewPrivs": st.get("NoNewPrivs"),
        "pids": pids, "pid 1": open("/proc/1/cmdline", "rb").read().split(b"\0")[0].decode(),
        "hostname": os.uname().nodename,
        "tmp": sorted(os.listdir("/tmp")),
        "home": os.environ.get("HOME"), "home writable": os.access(os.environ["HOME"], os.W_OK),
        "other guest's marks in /tmp": [n for n in os.listdir("/tmp") if other in n],
        "run folder visible": [p for p in sys.argv[4:] if os.path.exists(p)],
        "token in environment": any("TOKEN" in k for k in os.environ),
        "agent environ": readable(f"/proc/{parent}/environ"),
        "agent memory": readable(f"/proc/{parent}/mem"),
        "open fds": sorted(int(n) for n in os.listdir("/proc/self/fd")),
        "CA in the system bundle": ca_marker in bundle,
        "system CAs in the bundle": bundle.count("BEGIN CERTIFICATE"),
        "X socket": os.path.exists("/tmp/.X11-unix/X" + os.environ["DISPLAY"].lstrip(":")),
        "session bus": os.environ.get("DBUS_SESSION_BUS_ADDRESS", ""),
        "session bus socket": os.path.exists(os.path.join(runtime, "bus")),
        "xdg": {k: os.path.isdir(v) and os.access(v, os.W_OK) for k, v in os.environ.items()
                if k.startswith("XDG_") and k.endswith(("_HOME", "_DIR"))},
        "locale": os.environ.get("LANG"),
        "fonts": os.path.isdir("/usr/share/fonts") and os.path.isdir("/etc/fonts"),
        "shared memory writable": os.access("/dev/shm", os.W_OK),
        "shadow": readable("/etc/shadow"),
        "passwd": open("/etc/passwd").read(),
    }
    with open(out + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
