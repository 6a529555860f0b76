"""Regenerate an app profile's reference images after changing the reference client's GUI.

    DISPLAY=:N python -m testbed.lab.refclient.reference_images OUT_DIR [--language zh]
                                                               [--theme classic]

Shows each window state in-process and crops the widgets that the app profile clicks on or
waits for, using their on-screen geometry. Run it with the same screen settings as the lab:
Xvfb at 24 bits and the fonts the Makefile installs. The lab never uses this tool: runs drive
the GUI only.
"""

from __future__ import annotations

import argparse
import os
import tkinter as tk
from pathlib import Path

from PIL import ImageGrab

from testbed.lab.refclient.app import App
from testbed.lab.refclient.network import BuildProfile


def _crop(app: App, widget: tk.Misc, out: Path) -> None:
    app.root.update()
    x, y = widget.winfo_rootx(), widget.winfo_rooty()
    w, h = widget.winfo_width(), widget.winfo_height()
    ImageGrab.grab(xdisplay=os.environ["DISPLAY"]).crop((x, y, x + w, y + h)).save(out)
    print(f"wrote {out} ({w}x{h})")


def _find(frame: tk.Misc, cls: type, text: str) -> tk.Misc:
    for child in frame.winfo_children():
        if isinstance(child, cls) and child.cget("text") == text:  # type: ignore[union-attr]
            return child
    raise LookupError(text)


def _toplevel(app: App) -> tk.Toplevel:
    return next(w for w in app.root.winfo_children() if isinstance(w, tk.Toplevel))


def generate(out: Path, language: str, theme: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    app = App(BuildProfile(build="images", product="Skype", version="0", language=language,
                           title="Skype", theme=theme), lambda line: None)
    t = app.t
    app.root.update()
    f = app.frame
    _crop(app, _find(f, tk.Label, t["user"]), out / "label-user.png")
    _crop(app, _find(f, tk.Label, t["password"]), out / "label-password.png")
    _crop(app, _find(f, tk.Button, t["signin"]), out / "signin-button.png")
    f.destroy()
    app._main_frame("alice")
    f = app.frame
    for state, canvas in (("online", app.status), ("sent", app.chat_status),
                          ("received", app.chat_status), ("seen", app.chat_status),
                          ("incall", app.call_status), ("ended", app.call_status)):
        app._badge(canvas, state)
        _crop(app, canvas, out / f"status-{state}.png")
    for key, cls, name in (("about", tk.Button, "about-button"), ("to", tk.Label, "label-to"),
                           ("message", tk.Label, "label-message"),
                           ("send", tk.Button, "send-button"), ("call", tk.Button, "call-button"),
                           ("hangup", tk.Button, "hangup-button")):
        _crop(app, _find(f, cls, t[key]), out / f"{name}.png")
    app._incoming("bob")
    _crop(app, _find(_toplevel(app), tk.Button, t["answer"]), out / "answer-button.png")
    app._close_incoming()
    app._about()
    _crop(app, _find(_toplevel(app), tk.Button, t["close"]), out / "about-close.png")
    app.root.destroy()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--language", default="en")
    p.add_argument("--theme", default="modern")
    args = p.parse_args()
    if "DISPLAY" not in os.environ:
        p.error("needs DISPLAY (an X server such as Xvfb)")
    generate(args.out, args.language, args.theme)
