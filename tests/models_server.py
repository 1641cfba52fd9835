"""A local HTTP server for the model fetcher's tests and benchmark: serves files from memory (bytes) or
zero-filled (a size) with HEAD, Range and keep-alive, counts the bytes it sends, and misbehaves where
told: a cap on each connection's rate, a delay before every answer (a distant CDN), Range ignored,
a transfer cut after N bytes, wrong bytes sent, no answer at all."""
import http.server
import sys
import threading
import time
from collections import Counter

BLOCK = 1 << 20
ZEROS = bytes(BLOCK)


class ModelServer:
    def __init__(self, files, rate=0, request_delay=0.0, ranges=True, address="127.0.0.1"):
        self.address = address  # where it listens (a container reaches this machine at the bridge's gateway)
        self.files = dict(files)  # URL path -> bytes, or an int: that many zero bytes
        self.sent = Counter()  # URL path -> body bytes sent
        self.cut_after = {}  # URL path -> bytes after which the next transfer is cut (once)
        self.corrupt = Counter()  # URL path -> how many of the next transfers send a wrong first byte
        self.silent = set()  # URL paths whose requests get no answer at all
        self.delay = 0.0  # seconds of wait after each MiB sent (a slow link)
        self.rate = rate  # bytes a second on each connection; 0: as fast as loopback goes
        self.request_delay = request_delay  # seconds before each answer
        self.ranges = ranges  # False: Range is ignored (200 with the whole file), as some servers do
        self.advertised = ranges  # whether HEAD and GET say Accept-Ranges: bytes (some servers lie)
        self.requests = []  # (method, URL path, Range header, the client's port: one per connection)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.answer(body=False)

            def do_GET(self):
                self.answer(body=True)

            def answer(self, body):
                server.requests.append((self.command, self.path, self.headers.get("Range"), self.client_address[1]))
                if self.path in server.silent:
                    threading.Event().wait(60)  # hangs: the client must time out
                    return
                if server.request_delay:
                    time.sleep(server.request_delay)
                content = server.files.get(self.path)
                if content is None:
                    self.send_error(404)
                    return
                size = content if isinstance(content, int) else len(content)
                wanted = self.headers.get("Range") if server.ranges else None
                start, end = 0, size - 1
                if wanted:
                    first, _, last = wanted.split("=", 1)[1].partition("-")
                    start, end = int(first), min(int(last), size - 1) if last else size - 1
                    if start >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(end + 1 - start))
                if server.advertised:
                    self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if body:
                    self.send_body(content, start, end + 1)

            def send_body(self, content, start, stop):
                cut = server.cut_after.pop(self.path, None)
                if cut is not None:
                    stop = min(stop, start + cut)
                wrong = server.corrupt[self.path] > 0
                if wrong:
                    server.corrupt[self.path] -= 1
                began, sent = time.monotonic(), 0
                for offset in range(start, stop, BLOCK):
                    block = bytearray(piece(content, offset, min(BLOCK, stop - offset))) if wrong else \
                        piece(content, offset, min(BLOCK, stop - offset))
                    if wrong:
                        block[0] ^= 0xFF
                        wrong = False
                    self.wfile.write(block)
                    sent += len(block)
                    server.sent[self.path] += len(block)
                    if server.delay:
                        threading.Event().wait(server.delay)
                    if server.rate:
                        ahead = began + sent / server.rate - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
                if cut is not None:
                    self.close_connection = True

        self.httpd = Listening((address, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path):
        return f"http://{self.address}:{self.port}{path}"

    def connections(self, path):
        """How many connections asked for `path`'s bytes."""
        return len({port for method, asked, _, port in self.requests if method == "GET" and asked == path})

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class Listening(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a hundred connections at once are queued, not refused

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hangs up has what it wanted
            super().handle_error(request, client_address)


def piece(content, offset, length):
    """`length` bytes of `content` from `offset`, without a copy (zeros when `content` is a size)."""
    if isinstance(content, int):
        return memoryview(ZEROS)[:length]
    return memoryview(content)[offset:offset + length]
