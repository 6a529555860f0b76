"""Unicode typed by clipboard paste: the text is in the field before the agent goes on (a
click right after the paste used to act on an empty field under load: a chat sent empty)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from .xdisplay import xvfb

pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None or shutil.which("xclip") is None,
                                reason="needs Xvfb and xclip (make setup)")

# The app: a Tk entry and a Send button (what the reference client's chat has); the agent
# types into the entry, then clicks Send at once; Send prints what the entry held.
APP = textwrap.dedent('''
    import sys, threading, tkinter as tk
    from testbed.agent import steps
    texts, timeout = sys.argv[1].split("|"), float(sys.argv[2])
    steps.CLIPBOARD_TIMEOUT = timeout
    root = tk.Tk(); root.geometry("+0+0")
    entry = tk.Entry(root, width=40); entry.pack()
    sent = []
    button = tk.Button(root, text="Send", command=lambda: (sent.append(entry.get()),
                                                           entry.delete(0, "end")))
    button.pack()
    def agent():
        gui = steps._gui()
        for text in texts:
            try:
                steps.type_text(text)
            except steps.StepFailed as e:
                print("FAILED", e, flush=True)
            x, y = button.winfo_rootx() + 10, button.winfo_rooty() + 5
            gui.click(x, y)
        root.after(300, root.quit)
    def start():
        if sys.argv[3] == "focus":
            entry.focus_force()
        else:
            button.focus_force()
        threading.Thread(target=agent, daemon=True).start()
    root.after(300, start)
    root.after(60000, root.quit)
    root.mainloop()
    print("SENT", "|".join(sent), flush=True)
''')


def _app(tmp_path, texts: list[str], focus: str, timeout: float = 5.0) -> str:
    with xvfb(size="640x480x24") as display:
        (tmp_path / ".Xauthority").touch()
        env = dict(os.environ, DISPLAY=f":{display}", HOME=str(tmp_path))
        res = subprocess.run([sys.executable, "-c", APP, "|".join(texts), str(timeout), focus],
                             env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_pasted_text_is_in_the_field_before_the_next_click(tmp_path):
    texts = ["明天谈谈六四 CANARY-1", "法轮功 CANARY-2", "Grüße, ½ €", "六四", "Ωμέγα ✓"] * 3
    out = _app(tmp_path, texts, "focus")
    assert "FAILED" not in out, out
    assert out.strip().splitlines()[-1] == "SENT " + "|".join(texts)


def test_a_paste_nobody_takes_fails_the_step(tmp_path):
    out = _app(tmp_path, ["六四"], "button", timeout=1.0)
    assert "FAILED the app did not take the pasted text within 1 s" in out, out
