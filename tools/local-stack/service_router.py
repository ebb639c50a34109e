"""One endpoint for every AWS call moto's Step Functions makes.

moto 5.2.5 sends all of a state machine's service calls to ``http://localhost:$MOTO_PORT``:
the Lambda tasks' ``Invoke`` and the Distributed Map's S3 ``ItemReader`` (ListObjectsV2,
GetObject) and ``ResultWriter`` (PutObject) alike. The router listens there and sends
Lambda's Invoke API (``/2015-03-31/functions/...``) to lambda-local and everything else
to moto itself, as AWS's endpoints would.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Lambda's Invoke API; every other path is moto's.
LAMBDA_PATH = "/2015-03-31/functions/"
#: Hop-by-hop headers, not forwarded.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class ServiceRouter:
    """Routes requests to ``lambda_address`` (Lambda's Invoke API) or ``aws_address``
    (anything else); both ``host:port``. ``start`` returns the port it listens on."""

    def __init__(self, lambda_address: str, aws_address: str):
        self.lambda_address = lambda_address
        self.aws_address = aws_address
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> int:
        router = self

        class Handler(BaseHTTPRequestHandler):
            def forward(self) -> None:
                target = router.lambda_address if self.path.startswith(LAMBDA_PATH) else router.aws_address
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                host, port = target.rsplit(":", 1)
                # Lambda invocations last as long as the function runs.
                conn = http.client.HTTPConnection(host, int(port), timeout=900)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status)
                    for key, value in resp.getheaders():
                        if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                            self.send_header(key, value)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = forward

            def log_message(self, *args) -> None:  # the stack's own logs say enough
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="service-router", daemon=True).start()
        return self.server.server_address[1]

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
