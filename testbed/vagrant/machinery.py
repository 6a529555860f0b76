"""Vagrant machines, driven through python-vagrant, with what python-vagrant lacks.

* Per-machine snapshots: python-vagrant's ``snapshot_save``/``snapshot_restore`` act on every
  machine of a multi-machine Vagrantfile, so they go through the vagrant CLI with the
  machine's name.
* Failures raise: ``status()`` and ``ssh()`` in python-vagrant do not raise on failure, and its
  quiet mode hides vagrant's output. Every call here logs vagrant's own output to ``log`` and a
  failure raises ``VmError`` quoting the end of it.
* Machine states are python-vagrant's named constants (``RUNNING``, ``NOT_CREATED``, ...).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import vagrant

from testbed._errors import VmError

RUNNING, NOT_CREATED, POWEROFF, SHUTOFF = (vagrant.Vagrant.RUNNING, vagrant.Vagrant.NOT_CREATED,
                                          vagrant.Vagrant.POWEROFF, vagrant.Vagrant.SHUTOFF)


class Machinery:
    def __init__(self, root: Path, env: dict[str, str], log: Path) -> None:
        self.root, self.env, self.log = root, env, log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._v = vagrant.Vagrant(root=str(root), env=env, out_cm=self._out, err_cm=self._out)

    @contextlib.contextmanager
    def _out(self) -> Iterator[IO[str]]:
        with self.log.open("a", encoding="utf-8") as f:
            yield f

    def _tail(self, lines: int = 15) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _fail(self, what: str, e: Exception) -> VmError:
        return VmError(f"vagrant {what} failed ({e}); vagrant said:\n{self._tail()}")

    def _cli(self, *args: str, timeout: float = 900, input: bytes | None = None,
             argv0: tuple[str, ...] = ("vagrant",), what: str = "") -> str:
        """Run a command, its output logged; ``input`` (which may be secret) is not."""
        what = what or " ".join(argv0[-1:] + args[:2])
        with self.log.open("a", encoding="utf-8") as f:
            f.write(f"$ {' '.join(argv0 + args)}\n")
        try:
            res = subprocess.run([*argv0, *args], cwd=self.root, env=self.env, input=input,
                                 capture_output=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise self._fail(what, e) from e
        out, err = (res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace"))
        with self.log.open("a", encoding="utf-8") as f:
            f.write(out + err)
        if res.returncode != 0:
            raise VmError(f"{what} failed (exit {res.returncode}); it said:\n{self._tail()}")
        return out

    def state(self, name: str) -> str:
        """The machine's state (``RUNNING``, ``NOT_CREATED``, ...); raises when unknown."""
        try:
            statuses = self._v.status(vm_name=name)
        except (subprocess.CalledProcessError, OSError) as e:
            raise self._fail("status", e) from e
        if not statuses or statuses[0].state is None:
            raise VmError(f"vagrant status of {name} said nothing; vagrant said:\n{self._tail()}")
        return str(statuses[0].state)

    def up(self, name: str, provider: str | None = None, provision: bool = True) -> None:
        try:
            self._v.up(vm_name=name, provider=provider, no_provision=not provision)
        except (subprocess.CalledProcessError, OSError) as e:
            raise self._fail(f"up {name}", e) from e
        if self.state(name) != RUNNING:
            raise VmError(f"{name} is {self.state(name)} after vagrant up")

    def up_many(self, names: list[str], provider: str = "libvirt") -> None:
        """``vagrant up`` of several machines in one process, in parallel where the provider
        can (vagrant-libvirt can: one box import, then every domain at once)."""
        if names:
            self._cli("up", "--provider", provider, "--parallel", "--provision", *names,
                      timeout=3600, what=f"vagrant up {' '.join(names)}")

    def ssh_config(self, name: str) -> dict[str, str]:
        """The machine's ssh settings (``HostName``, ``User``, ``IdentityFile``, ...), written
        to ``.ssh-<name>`` beside the Vagrantfile for ``run``."""
        text = self._cli("ssh-config", name, timeout=120)
        (self.root / f".ssh-{name}").write_text(text)
        return {k: v.strip('"') for k, _, v in
                (line.strip().partition(" ") for line in text.splitlines()) if k}

    def run(self, name: str, command: str, input: bytes | None = None,
            timeout: float = 300) -> str:
        """``command`` on the machine over plain ssh (after ``ssh_config``), without vagrant's
        start-up time; ``input`` goes to its stdin and is never logged. A non-zero exit raises
        (python-vagrant's ``ssh()`` does not)."""
        return self._cli("-F", str(self.root / f".ssh-{name}"), "-o", "BatchMode=yes", name,
                         command, input=input, timeout=timeout, argv0=("ssh",),
                         what=f"ssh {name} {command.split()[0] if command else ''}".strip())

    def snapshot_save(self, name: str, snapshot: str) -> None:
        self._cli("snapshot", "save", "--force", name, snapshot)

    def snapshot_restore(self, name: str, snapshot: str) -> None:
        self._cli("snapshot", "restore", "--no-provision", name, snapshot)

    def snapshots(self, name: str) -> list[str]:
        out = self._cli("snapshot", "list", name)
        if "No snapshots have been taken" in out:
            return []
        return [line.strip() for line in out.splitlines()
                if line.strip() and not line.startswith("==>")]

    def snapshot_delete(self, name: str, snapshot: str) -> None:
        self._cli("snapshot", "delete", name, snapshot)

    def destroy(self, name: str | None = None) -> None:
        try:
            self._v.destroy(vm_name=name)
        except (subprocess.CalledProcessError, OSError) as e:
            raise self._fail("destroy", e) from e
