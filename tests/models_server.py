"""A local HTTP server for the model fetcher's tests: serves files from memory with HEAD and Range,
counts the bytes it sends, and misbehaves where told (cut a transfer after N bytes, stop answering)."""
import http.server
import threading
from collections import Counter


class ModelServer:
    def __init__(self, files):
        self.files = dict(files)  # URL path -> bytes
        self.sent = Counter()  # URL path -> body bytes sent
        self.cut_after = {}  # URL path -> bytes after which the next transfer is cut (once)
        self.silent = set()  # URL paths whose requests get no answer at all
        self.delay = 0.0  # seconds of wait after each MiB sent (a slow link)
        self.requests = []
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
                server.requests.append((self.command, self.path, self.headers.get("Range")))
                if self.path in server.silent:
                    threading.Event().wait(60)  # hangs: the client must time out
                    return
                content = server.files.get(self.path)
                if content is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(content):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(content)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(content) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if not body:
                    return
                rest = content[start:]
                cut = server.cut_after.pop(self.path, None)
                if cut is not None:
                    rest = rest[:cut]
                view = memoryview(rest)
                for offset in range(0, len(view), 1 << 20):
                    self.wfile.write(view[offset:offset + (1 << 20)])
                    server.sent[self.path] += len(view[offset:offset + (1 << 20)])
                    if server.delay:
                        threading.Event().wait(server.delay)
                if cut is not None:
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
