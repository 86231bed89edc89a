"""A stand-in for Bridge's HTTP API: a real HTTP server on 127.0.0.1 that records each request and
answers with the statuses a test scripts (the last one repeats)."""

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]  # percent-decoded, in order
    headers: dict[str, str]
    body: bytes


class FakeBridge:
    def __init__(self, *statuses: int):
        self.statuses = list(statuses) or [200]
        self.requests: list[RecordedRequest] = []
        self._arrived = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def wait_for_requests(self, count: int, timeout: float) -> list[RecordedRequest]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def _record(self, request: RecordedRequest) -> int:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()
            return self.statuses[min(len(self.requests), len(self.statuses)) - 1]

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                url = urlsplit(self.path)
                status = fake._record(RecordedRequest(
                    "POST", url.path, parse_qsl(url.query, keep_blank_values=True),
                    dict(self.headers.items()), body))
                answer = b"{}" if status == 200 else b"refused"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        return Handler
