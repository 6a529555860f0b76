"""Text pasted through the X clipboard, with the moment the app has it.

Pasting is asynchronous in X: on Ctrl+V the app asks the clipboard's owner for the text and
keeps handling its other events while it waits (Tk, GTK), so a click sent right after the
paste can act on the field before the text is in it (seen: a chat sent empty under load). The
owner here is ``xclip -quiet``, which stays in the foreground and writes "Waiting for selection
request number N" each time it has served a request: the paste has been answered once N grows
past the requests we made ourselves (and one more read of ours, once answered, says the app's
answer has left xclip: it flushes before it reads the next request).
"""

from __future__ import annotations

import re
import subprocess
import threading
import time

WAITING = re.compile(rb"request number (\d+)")


class ClipboardOwner:
    """One text offered on the clipboard until the app has taken it (or ``close``)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._served = 0
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(["xclip", "-selection", "clipboard", "-quiet"],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        self.proc.stdin.close()
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            m = WAITING.search(line)
            if m:
                with self._changed:
                    self._served = int(m.group(1)) - 1  # "waiting for N": N - 1 were served
                    self._changed.notify_all()

    @property
    def served(self) -> int:
        with self._changed:
            return self._served

    def wait_served(self, more_than: int, timeout: float) -> bool:
        """True once more than ``more_than`` requests were served, False at ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._served <= more_than:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return self._served > more_than
                self._changed.wait(min(left, 0.05))
            return True

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
