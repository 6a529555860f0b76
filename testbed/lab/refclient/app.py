"""The reference client's windows: sign-in, main window (status, chat), About.

Driven only through its GUI (the agent clicks and types with pyautogui). All network work runs
on worker threads; results come back to Tk through ``after``. The widgets the app profile's
reference images show (labels, buttons, status badges) look the same in every build; the
title and the About window name the build.
"""

from __future__ import annotations

import queue
import sys
import threading
import tkinter as tk
from collections.abc import Callable
from typing import Any

from testbed.lab.refclient.network import BuildProfile, Relay, contact

FONT = ("DejaVu Sans", 11)
BIG = ("DejaVu Sans", 16, "bold")
BLUE = "#00aff0"
TEXTS = {
    "en": {"user": "Skype Name", "password": "Password", "signin": "Sign in"},
    "zh": {"user": "Skype Name", "password": "Password", "signin": "Sign in"},
}


class App:
    def __init__(self, profile: BuildProfile, log: Callable[[str], None]) -> None:
        self.profile = profile
        self.log = log
        self.root = tk.Tk(className="refclient")
        self.root.title(f"{profile.title}")
        self.root.geometry("640x440+40+40")
        self.root.resizable(False, False)
        self.root.configure(bg="white")
        self.events: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]]] = queue.Queue()
        self.relay: Relay | None = None
        self.seen = 0
        self._signin_frame()
        self.root.after(50, self._pump)
        threading.Thread(target=self._launch_contacts, daemon=True).start()

    # -- plumbing -------------------------------------------------------------------------
    def _pump(self) -> None:
        while not self.events.empty():
            fn, args = self.events.get_nowait()
            fn(*args)
        self.root.after(50, self._pump)

    def _later(self, fn: Callable[..., None], *args: Any) -> None:
        self.events.put((fn, args))

    def _launch_contacts(self) -> None:
        for url in self.profile.launch:
            self.log(f"launch {url}: {contact(url)}")

    # -- sign-in --------------------------------------------------------------------------
    def _signin_frame(self) -> None:
        t = TEXTS.get(self.profile.language, TEXTS["en"])
        f = self.frame = tk.Frame(self.root, bg="white")
        f.pack(fill="both", expand=True)
        tk.Label(f, text=self.profile.product, font=BIG, bg="white", fg=BLUE).place(x=30, y=20)
        tk.Label(f, text=t["user"], font=FONT, bg="white", width=12, anchor="w").place(x=30, y=100)
        self.user_entry = tk.Entry(f, font=FONT, width=24)
        self.user_entry.place(x=180, y=100)
        tk.Label(f, text=t["password"], font=FONT, bg="white", width=12, anchor="w").place(
            x=30, y=150
        )
        self.pw_entry = tk.Entry(f, font=FONT, width=24, show="*")
        self.pw_entry.place(x=180, y=150)
        tk.Button(
            f, text=t["signin"], font=FONT, bg=BLUE, fg="white", activebackground=BLUE,
            width=12, relief="flat", command=self._sign_in,
        ).place(x=180, y=210)

    def _sign_in(self) -> None:
        user, password = self.user_entry.get().strip(), self.pw_entry.get()
        self.frame.destroy()
        self._main_frame(user)
        self._set_status("connecting")
        threading.Thread(target=self._login_worker, args=(user, password), daemon=True).start()

    def _login_worker(self, user: str, password: str) -> None:
        for url in self.profile.login:
            self.log(f"login {url}: {contact(url)}")
        try:
            self.relay = Relay(self.profile.relay, user)
            self.relay.sign_in(password)
        except OSError as e:
            self.log(f"relay sign-in failed: {e}")
            self._later(self._set_status, "offline")
            return
        self.log("online")
        self._later(self._set_status, "online")
        self._later(self._poll)

    # -- main window ----------------------------------------------------------------------
    def _main_frame(self, user: str) -> None:
        f = self.frame = tk.Frame(self.root, bg="white")
        f.pack(fill="both", expand=True)
        tk.Label(f, text=f"{self.profile.product} — {user}", font=BIG, bg="white", fg=BLUE).place(
            x=30, y=15
        )
        self.status = tk.Canvas(f, width=200, height=28, bg="white", highlightthickness=0)
        self.status.place(x=30, y=60)
        tk.Button(f, text="About", font=FONT, width=8, command=self._about).place(x=520, y=60)
        tk.Label(f, text="To", font=FONT, bg="white", width=8, anchor="w").place(x=30, y=120)
        self.to_entry = tk.Entry(f, font=FONT, width=20)
        self.to_entry.place(x=130, y=120)
        tk.Label(f, text="Message", font=FONT, bg="white", width=8, anchor="w").place(x=30, y=165)
        self.msg_entry = tk.Entry(f, font=FONT, width=36)
        self.msg_entry.place(x=130, y=165)
        tk.Button(
            f, text="Send", font=FONT, bg="#3cb043", fg="white", width=8, relief="flat",
            command=self._send,
        ).place(x=520, y=160)
        self.chat_status = tk.Canvas(f, width=200, height=28, bg="white", highlightthickness=0)
        self.chat_status.place(x=130, y=205)
        self.history = tk.Text(f, font=FONT, width=64, height=8, bg="#f4f4f4", relief="flat")
        self.history.place(x=30, y=250)

    def _badge(self, canvas: tk.Canvas, colour: str, text: str) -> None:
        canvas.delete("all")
        canvas.create_oval(4, 6, 20, 22, fill=colour, outline=colour)
        canvas.create_text(28, 14, text=text, anchor="w", font=FONT)

    def _set_status(self, state: str) -> None:
        colour, text = {
            "connecting": ("#f5c400", "Connecting"),
            "online": ("#3cb043", "Online"),
            "offline": ("#d62828", "Sign-in failed"),
        }[state]
        self._badge(self.status, colour, text)

    def _send(self) -> None:
        to, text = self.to_entry.get().strip(), self.msg_entry.get()
        self.chat_status.delete("all")

        def work() -> None:
            try:
                if self.relay is None:
                    raise OSError("not signed in")
                self.relay.send(to, text)
            except OSError as e:
                self.log(f"send failed: {e}")
                self._later(self._badge, self.chat_status, "#d62828", "Not sent")
                return
            self.log(f"sent to {to}")
            self._later(self._sent, to, text)

        threading.Thread(target=work, daemon=True).start()

    def _sent(self, to: str, text: str) -> None:
        self.history.insert("end", f"me → {to}: {text}\n")
        self.msg_entry.delete(0, "end")
        self._badge(self.chat_status, "#1e6fd9", "Sent")

    def _poll(self) -> None:
        def work() -> None:
            try:
                msgs = self.relay.inbox() if self.relay else []
            except OSError as e:
                self.log(f"inbox failed: {e}")
                msgs = []
            self._later(self._received, msgs)

        threading.Thread(target=work, daemon=True).start()

    def _received(self, msgs: list[dict[str, str]]) -> None:
        for m in msgs:
            self.history.insert("end", f"{m.get('from')}: {m.get('text')}\n")
            self.seen += 1
        if msgs:
            self._badge(self.chat_status, "#8e44ad", "New message")
        self.root.after(1000, self._poll)

    # -- About ----------------------------------------------------------------------------
    def _about(self) -> None:
        w = tk.Toplevel(self.root, bg="white")
        w.title(f"About {self.profile.product}")
        w.geometry("420x220+150+120")
        tk.Label(w, text=self.profile.title, font=BIG, bg="white", fg=BLUE).place(x=20, y=20)
        tk.Label(
            w, text=f"Version {self.profile.version}\nBuild: {self.profile.build}",
            font=FONT, bg="white", justify="left",
        ).place(x=20, y=70)
        tk.Button(w, text="Close", font=FONT, width=8, command=w.destroy).place(x=300, y=170)

    def run(self) -> None:
        self.root.mainloop()


def main_log(line: str) -> None:
    print(line, flush=True, file=sys.stdout)
