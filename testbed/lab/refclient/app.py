"""The reference client's windows: sign-in, main window (status, contacts, chat, call),
incoming call (Answer / Decline) and About.

Driven only through its GUI: the agent clicks and types with pyautogui. All network work runs
on worker threads, and results come back to Tk through a queue pumped by ``after``. A build
profile's ``language`` picks the texts (``zh``: a Chinese interface), and its ``theme`` picks
the look (``classic``: the older Skype that the Chinese TOM build is based on). Each
language and theme has its own app profile and reference images.
"""

from __future__ import annotations

import queue
import sys
import threading
import tkinter as tk
import uuid
from collections.abc import Callable
from typing import Any

from testbed.lab.refclient.network import BuildProfile, MediaStream, Monitor, Network, Relay

TEXTS: dict[str, dict[str, str]] = {
    "en": {"user": "Skype Name", "password": "Password", "signin": "Sign in", "about": "About",
           "call": "Call", "hangup": "Hang up", "to": "To", "message": "Message",
           "send": "Send", "answer": "Answer", "decline": "Decline", "close": "Close",
           "contacts": "Contacts", "online": "Online", "connecting": "Connecting",
           "offline": "Sign-in failed", "sent": "Sent", "notsent": "Not sent",
           "received": "New message", "seen": "Seen", "incall": "In call", "ringing": "Calling",
           "ended": "Call ended", "incoming": "Incoming call from {peer}",
           "version": "Version", "build": "Build"},
    "zh": {"user": "Skype 用户名", "password": "密码", "signin": "登录", "about": "关于",
           "call": "呼叫", "hangup": "挂断", "to": "收件人", "message": "消息", "send": "发送",
           "answer": "接听", "decline": "拒绝", "close": "关闭", "contacts": "联系人",
           "online": "在线", "connecting": "正在连接", "offline": "登录失败", "sent": "已发送",
           "notsent": "未发送", "received": "新消息", "seen": "已读", "incall": "通话中",
           "ringing": "正在呼叫",
           "ended": "通话结束", "incoming": "{peer} 来电", "version": "版本", "build": "版本号"},
}
THEMES: dict[str, dict[str, str]] = {
    "modern": {"bg": "white", "accent": "#00aff0", "panel": "#f4f4f4", "font": "DejaVu Sans"},
    "classic": {"bg": "#eef3f8", "accent": "#f08300", "panel": "#ffffff",
                "font": "WenQuanYi Micro Hei"},
}
MEDIA_WAIT = 5.0  # seconds a call waits for its media to flow before it shows "In call" anyway
BADGES = {"online": "#3cb043", "connecting": "#f5c400", "offline": "#d62828", "sent": "#1e6fd9",
          "notsent": "#d62828", "received": "#8e44ad", "seen": "#9e9e9e", "incall": "#3cb043",
          "ringing": "#f5c400", "ended": "#7f7f7f"}


class App:
    def __init__(self, profile: BuildProfile, log: Callable[[str], None]) -> None:
        self.profile = profile
        self.log = log
        self.t = TEXTS.get(profile.language, TEXTS["en"])
        self.theme = THEMES.get(profile.theme, THEMES["modern"])
        self.font = (self.theme["font"], 11)
        self.big = (self.theme["font"], 16, "bold")
        self.net = Network(profile.pins)
        self.monitor = Monitor(self.net, profile.surveillance) if profile.surveillance else None
        self.root = tk.Tk(className="refclient")
        self.root.title(profile.title)
        self.root.geometry("640x440+40+40")
        self.root.resizable(False, False)
        self.root.configure(bg=self.theme["bg"])
        self.events: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]]] = queue.Queue()
        self.relay: Relay | None = None
        self.user = ""
        self.peer = ""          # the other side of the current call
        self.media: MediaStream | None = None
        self.incoming: tk.Toplevel | None = None
        self._signin_frame()
        self.root.after(50, self._pump)
        self._work(self._launch_contacts)

    # -- plumbing -------------------------------------------------------------------------
    def _pump(self) -> None:
        while not self.events.empty():
            fn, args = self.events.get_nowait()
            fn(*args)
        self.root.after(50, self._pump)

    def _later(self, fn: Callable[..., None], *args: Any) -> None:
        self.events.put((fn, args))

    @staticmethod
    def _work(fn: Callable[..., None], *args: Any) -> None:
        threading.Thread(target=fn, args=args, daemon=True).start()

    def _label(self, parent: tk.Misc, key: str, x: int, y: int, width: int) -> tk.Label:
        label = tk.Label(parent, text=self.t[key], font=self.font, bg=self.theme["bg"],
                         width=width, anchor="w")
        label.place(x=x, y=y)
        return label

    def _button(self, parent: tk.Misc, key: str, x: int, y: int, command: Callable[[], None],
                colour: str | None = None, width: int = 8) -> tk.Button:
        opts: dict[str, Any] = {"bg": colour, "fg": "white", "activebackground": colour,
                                "relief": "flat"} if colour else {}
        button = tk.Button(parent, text=self.t[key], font=self.font, width=width,
                           command=command, **opts)
        button.place(x=x, y=y)
        return button

    def _launch_contacts(self) -> None:
        for url in self.profile.launch:
            self.log(f"launch {url}: {self.net.contact(url)}")

    # -- sign-in --------------------------------------------------------------------------
    def _signin_frame(self) -> None:
        f = self.frame = tk.Frame(self.root, bg=self.theme["bg"])
        f.pack(fill="both", expand=True)
        tk.Label(f, text=self.profile.product, font=self.big, bg=self.theme["bg"],
                 fg=self.theme["accent"]).place(x=30, y=20)
        self._label(f, "user", 30, 100, 12)
        self.user_entry = tk.Entry(f, font=self.font, width=24)
        self.user_entry.place(x=180, y=100)
        self._label(f, "password", 30, 150, 12)
        self.pw_entry = tk.Entry(f, font=self.font, width=24, show="*")
        self.pw_entry.place(x=180, y=150)
        self._button(f, "signin", 180, 210, self._sign_in, self.theme["accent"], 12)

    def _sign_in(self) -> None:
        user, password = self.user_entry.get().strip(), self.pw_entry.get()
        self.user = user
        self.frame.destroy()
        self._main_frame(user)
        self._badge(self.status, "connecting")
        self._work(self._login_worker, user, password)

    def _login_worker(self, user: str, password: str) -> None:
        for url in self.profile.login:
            self.log(f"login {url}: {self.net.contact(url)}")
        if self.monitor is not None:
            self.log(f"keyword list: {self.monitor.fetch_keywords()}")
        try:
            self.relay = Relay(self.net, self.profile.relay, user)
            self.relay.sign_in(password)
        except OSError as e:
            self.log(f"relay sign-in failed: {e}")
            self._later(self._badge, self.status, "offline")
            return
        self.log("online")
        self._later(self._badge, self.status, "online")
        self._later(self._poll)
        self._work(self._presence_loop)

    def _presence_loop(self) -> None:
        while self.relay is not None:
            try:
                self.relay.presence()
                roster = self.relay.roster()
                self._later(self._show_roster, roster)
            except OSError as e:
                self.log(f"presence failed: {e}")
            threading.Event().wait(self.profile.presence_every)

    # -- main window ----------------------------------------------------------------------
    def _main_frame(self, user: str) -> None:
        f = self.frame = tk.Frame(self.root, bg=self.theme["bg"])
        f.pack(fill="both", expand=True)
        tk.Label(f, text=f"{self.profile.product} — {user}", font=self.big, bg=self.theme["bg"],
                 fg=self.theme["accent"]).place(x=30, y=15)
        self.status = self._canvas(f, 30, 60)
        self._button(f, "about", 520, 60, self._about)
        self._label(f, "to", 30, 120, 8)
        self.to_entry = tk.Entry(f, font=self.font, width=20)
        self.to_entry.place(x=130, y=120)
        self._button(f, "call", 400, 115, self._call, "#3cb043")
        self._button(f, "hangup", 520, 115, self._hang_up, "#d62828")
        self._label(f, "message", 30, 165, 8)
        self.msg_entry = tk.Entry(f, font=self.font, width=36)
        self.msg_entry.place(x=130, y=165)
        self._button(f, "send", 520, 160, self._send, self.theme["accent"])
        self.chat_status = self._canvas(f, 130, 205)
        # a click on the chat badge acknowledges it ("Seen"): the next one cannot be stale
        self.chat_status.bind("<Button-1>", lambda _e: self._badge(self.chat_status, "seen"))
        self.call_status = self._canvas(f, 400, 205)
        self._label(f, "contacts", 30, 245, 12)
        self.contacts = tk.Listbox(f, font=self.font, width=12, height=7, relief="flat",
                                   bg=self.theme["panel"])
        self.contacts.place(x=30, y=270)
        self.history = tk.Text(f, font=self.font, width=48, height=8, relief="flat",
                               bg=self.theme["panel"])
        self.history.place(x=170, y=250)

    def _canvas(self, parent: tk.Misc, x: int, y: int) -> tk.Canvas:
        c = tk.Canvas(parent, width=200, height=28, bg=self.theme["bg"], highlightthickness=0)
        c.place(x=x, y=y)
        return c

    def _badge(self, canvas: tk.Canvas, state: str) -> None:
        canvas.delete("all")
        colour = BADGES[state]
        canvas.create_oval(4, 6, 20, 22, fill=colour, outline=colour)
        canvas.create_text(28, 14, text=self.t[state], anchor="w", font=self.font)

    def _show_roster(self, roster: list[str]) -> None:
        self.contacts.delete(0, "end")
        for name in roster:
            if name != self.user:
                self.contacts.insert("end", name)

    # -- chat -----------------------------------------------------------------------------
    def _send(self) -> None:
        to, text = self.to_entry.get().strip(), self.msg_entry.get()
        self.chat_status.delete("all")

        def work() -> None:
            try:
                if self.relay is None:
                    raise OSError("not signed in")
                if self.monitor and self.monitor.scan(self.user, to, text, "sent"):
                    self.log(f"message to {to} suppressed by the keyword filter")
                else:
                    self.relay.send(to, text)
            except OSError as e:
                self.log(f"send failed: {e}")
                self._later(self._badge, self.chat_status, "notsent")
                return
            self.log(f"sent to {to}")
            self._later(self._sent, to, text)

        self._work(work)

    def _sent(self, to: str, text: str) -> None:
        self.history.insert("end", f"→ {to}: {text}\n")
        self.msg_entry.delete(0, "end")
        self.to_entry.delete(0, "end")
        self._badge(self.chat_status, "sent")

    def _poll(self) -> None:
        def work() -> None:
            try:
                items = self.relay.inbox() if self.relay else []
            except OSError as e:
                self.log(f"inbox failed: {e}")
                items = []
            shown = []
            for item in items:
                if "text" in item and self.monitor and self.monitor.scan(
                        item.get("from", ""), self.user, item["text"], "received"):
                    self.log(f"message from {item.get('from')} suppressed by the keyword filter")
                    continue
                shown.append(item)
            self._later(self._received, shown)

        self._work(work)

    def _received(self, items: list[dict[str, str]]) -> None:
        for item in items:
            if "signal" in item:
                self._on_signal(item["from"], item["signal"])
                continue
            self.history.insert("end", f"{item.get('from')}: {item.get('text')}\n")
            self.log(f"received from {item.get('from')}")
            self._badge(self.chat_status, "received")
        self.root.after(500, self._poll)

    # -- calls ----------------------------------------------------------------------------
    def _signal(self, to: str, kind: str) -> None:
        def work() -> None:
            try:
                if self.relay is not None:
                    self.relay.signal(to, kind)
            except OSError as e:
                self.log(f"call signal {kind} failed: {e}")

        self._work(work)

    def _call(self) -> None:
        to = self.to_entry.get().strip()
        if not to or self.relay is None:
            return
        self.peer = to
        self.to_entry.delete(0, "end")
        self._badge(self.call_status, "ringing")
        self._signal(to, "call")

    def _on_signal(self, peer: str, kind: str) -> None:
        self.log(f"call signal {kind} from {peer}")
        if kind == "call":
            self._incoming(peer)
        elif kind == "answer" and peer == self.peer:
            self._start_media()
        elif kind in ("hangup", "decline") and peer == self.peer:
            self._end_call()

    def _incoming(self, peer: str) -> None:
        w = self.incoming = tk.Toplevel(self.root, bg=self.theme["bg"])
        w.title(self.t["incoming"].format(peer=peer))
        w.geometry("360x150+200+200")
        tk.Label(w, text=self.t["incoming"].format(peer=peer), font=self.big,
                 bg=self.theme["bg"]).place(x=20, y=25)
        self._button(w, "answer", 40, 95, lambda: self._answer(peer), "#3cb043")
        self._button(w, "decline", 200, 95, lambda: self._decline(peer), "#d62828")

    def _close_incoming(self) -> None:
        if self.incoming is not None:
            self.incoming.destroy()
            self.incoming = None

    def _answer(self, peer: str) -> None:
        self._close_incoming()
        self.peer = peer
        self._signal(peer, "answer")
        self._start_media()

    def _decline(self, peer: str) -> None:
        self._close_incoming()
        self._signal(peer, "decline")

    def _start_media(self) -> None:
        """The call is up ("In call") once its media flows both ways: the relay has echoed a
        second of it."""
        if not self.profile.media_relay:
            self._in_call()
            return
        media = self.media = MediaStream(self.profile.media_relay,
                                         self.profile.packets_per_second, uuid.uuid4().hex[:8])
        media.start()

        def wait() -> None:
            if not media.flowing.wait(MEDIA_WAIT):
                self.log(f"media from {self.profile.media_relay}: {media.echoed} echoes in "
                         f"{MEDIA_WAIT:g} s")
            self._later(self._in_call)

        self._work(wait)

    def _in_call(self) -> None:
        self.log(f"in call with {self.peer} via {self.profile.media_relay}")
        self._badge(self.call_status, "incall")

    def _hang_up(self) -> None:
        if self.peer:
            self._signal(self.peer, "hangup")
        self._end_call()

    def _end_call(self) -> None:
        if self.media is not None:
            self.media.stop()
            self.log(f"call ended: {self.media.sent} media packets sent")
            self.media = None
        self.peer = ""
        self._badge(self.call_status, "ended")

    # -- About ----------------------------------------------------------------------------
    def _about(self) -> None:
        w = tk.Toplevel(self.root, bg=self.theme["bg"])
        w.title(f"{self.t['about']} {self.profile.product}")
        w.geometry("420x220+150+120")
        tk.Label(w, text=self.profile.title, font=self.big, bg=self.theme["bg"],
                 fg=self.theme["accent"]).place(x=20, y=20)
        tk.Label(w, text=f"{self.t['version']} {self.profile.version}\n"
                         f"{self.t['build']}: {self.profile.build}",
                 font=self.font, bg=self.theme["bg"], justify="left").place(x=20, y=70)
        self._button(w, "close", 300, 170, w.destroy)

    def run(self) -> None:
        self.root.mainloop()


def main_log(line: str) -> None:
    print(line, flush=True, file=sys.stdout)
