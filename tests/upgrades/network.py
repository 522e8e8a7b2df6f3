"""A stand-in for the satellite network's management system: a real HTTP server."""

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeNetwork:
    """Answers 503 to the first ``fail_first`` batches (an outage), then applies them.

    With ``keep_alive`` it speaks HTTP/1.1 and keeps each connection open (``connections``
    counts them). Set ``down`` to answer 503 to everything from now on, and ``slow_lines`` to answer
    batches holding any of those lines only after ``delay`` seconds: the network applies
    such a batch, but a client with a shorter timeout does not hear it.

    ``requests`` counts the POSTs and ``batches`` lists the lines of each; ``posted`` counts
    each change id POSTed, ``applied`` each change id the network took; ``speeds`` is the
    line speeds the network now runs.
    """

    def __init__(self, fail_first: int = 0, *, slow_lines=(), delay: float = 0.5, keep_alive=False):
        self.fail_first = fail_first
        self.down = False
        self.slow_lines = set(slow_lines)
        self.delay = delay
        self.requests = 0
        self.connections = 0  # TCP connections accepted
        self.batches: list[list[str]] = []
        self.posted: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()
        self.speeds: dict[str, int] = {}
        self.lock = threading.Lock()
        network = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 keeps the connection open for the next request; 1.0 closes it.
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def setup(self):
                super().setup()
                with network.lock:
                    network.connections += 1

            def do_POST(self):
                changes = json.loads(self.rfile.read(int(self.headers["Content-Length"])))[
                    "changes"
                ]
                with network.lock:
                    network.requests += 1
                    network.batches.append([change["line"] for change in changes])
                    network.posted.update(change["change_id"] for change in changes)
                    failing = network.down or network.requests <= network.fail_first
                    slow = any(change["line"] in network.slow_lines for change in changes)
                    if not failing:
                        for change in changes:
                            network.applied[change["change_id"]] += 1
                            network.speeds[change["line"]] = change["speed_kbps"]
                if slow:
                    time.sleep(network.delay)
                try:
                    self.send_response(503 if failing else 200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting: the answer is lost, not the change

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/speeds"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeNetwork":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
