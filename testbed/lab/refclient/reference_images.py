"""Regenerate the app profile's reference images after changing the reference client's GUI.

    python -m testbed.lab.refclient.reference_images OUT_DIR   (needs DISPLAY, e.g. Xvfb)

Shows each window state in-process and crops the widgets the app profile clicks on or waits
for, by their on-screen geometry. Run under the same screen settings as the lab (Xvfb,
24-bit, the fonts the Makefile installs). The lab never uses this: runs drive the GUI only.
"""

from __future__ import annotations

import os
import sys
import tkinter as tk
from pathlib import Path

from PIL import ImageGrab

from testbed.lab.refclient.app import App
from testbed.lab.refclient.network import BuildProfile

PROFILE = BuildProfile(build="regular", product="Skype", version="0", language="en",
                       title="Skype")


def _crop(app: App, widget: tk.Misc, out: Path, pad: int = 0) -> None:
    app.root.update()
    x, y = widget.winfo_rootx(), widget.winfo_rooty()
    w, h = widget.winfo_width(), widget.winfo_height()
    img = ImageGrab.grab(xdisplay=os.environ["DISPLAY"])
    img.crop((x - pad, y - pad, x + w + pad, y + h + pad)).save(out)
    print(f"wrote {out} ({w}x{h})")


def _find(frame: tk.Misc, cls: type, text: str) -> tk.Misc:
    for child in frame.winfo_children():
        if isinstance(child, cls) and child.cget("text") == text:  # type: ignore[union-attr]
            return child
    raise LookupError(text)


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    app = App(PROFILE, lambda line: None)
    app.root.update()
    f = app.frame
    _crop(app, _find(f, tk.Label, "Skype Name"), out / "label-user.png")
    _crop(app, _find(f, tk.Label, "Password"), out / "label-password.png")
    _crop(app, _find(f, tk.Button, "Sign in"), out / "signin-button.png")
    f.destroy()
    app._main_frame("alice")
    f = app.frame
    app._set_status("online")
    _crop(app, app.status, out / "status-online.png")
    _crop(app, _find(f, tk.Button, "About"), out / "about-button.png")
    _crop(app, _find(f, tk.Label, "To"), out / "label-to.png")
    _crop(app, _find(f, tk.Label, "Message"), out / "label-message.png")
    _crop(app, _find(f, tk.Button, "Send"), out / "send-button.png")
    app._badge(app.chat_status, "#1e6fd9", "Sent")
    _crop(app, app.chat_status, out / "status-sent.png")
    app._badge(app.chat_status, "#8e44ad", "New message")
    _crop(app, app.chat_status, out / "status-received.png")
    app._about()
    about = next(w for w in app.root.winfo_children() if isinstance(w, tk.Toplevel))
    _crop(app, _find(about, tk.Button, "Close"), out / "about-close.png")
    app.root.destroy()


if __name__ == "__main__":
    if len(sys.argv) != 2 or "DISPLAY" not in os.environ:
        sys.exit("usage: DISPLAY=:N python -m testbed.lab.refclient.reference_images OUT_DIR")
    main(sys.argv[1])
