"""A stand-in for the satellite network's management system: a real HTTP server."""

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeNetwork:
    """Answers 503 to the first ``fail_first`` batches (an outage), then applies them.

    ``applied`` counts each change id the network took; ``speeds`` is the line speeds
    the network now runs.
    """

    def __init__(self, fail_first: int = 0):
        self.fail_first = fail_first
        self.requests = 0
        self.applied: Counter[str] = Counter()
        self.speeds: dict[str, int] = {}
        self.lock = threading.Lock()
        network = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with network.lock:
                    network.requests += 1
                    failing = network.requests <= network.fail_first
                    if not failing:
                        for change in body["changes"]:
                            network.applied[change["change_id"]] += 1
                            network.speeds[change["line"]] = change["speed_kbps"]
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

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
