"""Local fake servers at the network edge of the destinations: an HTTP receiver (webhooks, audience APIs, the
Brevo contacts API), an SMTP server (aiosmtpd) and S3 (moto's server), each in the test process on a free port."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Receiver:
    """An HTTP server that records what it gets. ``answers`` is a list of (status, delay seconds) used in turn for
    each new request (then 200 at once); a request whose Idempotency-Key it accepted before is answered 200 and
    recorded as a repeat, not as a new request, as a careful receiver would."""

    server: ThreadingHTTPServer | None = None
    requests: list[Received] = field(default_factory=list)
    repeats: list[Received] = field(default_factory=list)
    answers: list[tuple[int, float]] = field(default_factory=list)
    accepted_keys: set = field(default_factory=set)
    body: bytes = b'{"ok": true}'  # what a 2xx answer carries
    error_body: bytes = b'{"error": "refused by the fake"}'  # what a 4xx or 5xx answer carries
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, *answers: tuple[int, float]) -> None:
        self.answers.extend(answers)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        received = Received(handler.command, handler.path, dict(handler.headers.items()), body)
        key = handler.headers.get("Idempotency-Key")
        with self.lock:
            if key and key in self.accepted_keys:
                self.repeats.append(received)
                status, delay = 200, 0.0
            else:
                status, delay = self.answers.pop(0) if self.answers else (200, 0.0)
                if 200 <= status < 300:
                    self.requests.append(received)
                    if key:
                        self.accepted_keys.add(key)
        if delay:
            time.sleep(delay)
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            out = self.body if status < 400 else self.error_body
            handler.send_header("Content-Length", str(len(out)))
            handler.end_headers()
            handler.wfile.write(out)
        except OSError:  # the client gave up (its read timeout)
            pass


def receiver_start() -> Receiver:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            receiver.handle(self)

        do_GET = do_DELETE = do_PUT = do_POST

        def log_message(self, *args):
            pass

    receiver.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.server.daemon_threads = True
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    return receiver


class Mailbox:
    """aiosmtpd's handler: keeps each message it accepts."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"
