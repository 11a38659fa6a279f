#!/usr/bin/env python3
"""Serve www/ for flatminima: right MIME types for wasm/js, no caching. Standard library only.

    python3 scripts/serve.py [--port 8000] [--host 127.0.0.1] [--dir www] [--quiet]

PORT / HOST env vars are honoured too. --port 0 picks a free port; the first stdout line always
reads "Serving flatminima on http://HOST:PORT/" (tests can parse the real port from it).
"""

import argparse
import functools
import http.server
import os
import signal
import sys

MIME = {
    ".wasm": "application/wasm",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
}


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME}
    quiet = False

    def end_headers(self):
        self.send_header("Cache-Control", "no-store, must-revalidate")
        self.send_header("Pragma", "no-cache")
        self.send_header("Expires", "0")
        super().end_headers()

    def send_head(self):
        # Drop conditional-request support so a rebuilt file is always sent in full.
        for h in ("If-Modified-Since", "If-None-Match"):
            if h in self.headers:
                del self.headers[h]
        return super().send_head()

    def log_message(self, fmt, *args):
        if not self.quiet:
            super().log_message(fmt, *args)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    p.add_argument("--dir", default=os.path.join(root, "www"))
    p.add_argument("--quiet", action="store_true", help="do not log requests")
    p.add_argument("port_pos", nargs="?", type=int, help="port (same as --port)")
    a = p.parse_args()
    port = a.port_pos if a.port_pos is not None else a.port

    if not os.path.isdir(a.dir):
        sys.exit(f"serve.py: {a.dir} does not exist")
    if not os.path.isfile(os.path.join(a.dir, "pkg", "flatminima_bg.wasm")):
        print(f"serve.py: warning: {a.dir}/pkg/flatminima_bg.wasm missing (run `make build`)", file=sys.stderr)

    Handler.quiet = a.quiet
    handler = functools.partial(Handler, directory=a.dir)
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    httpd = http.server.ThreadingHTTPServer((a.host, port), handler)
    httpd.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    host, real_port = httpd.server_address[:2]
    print(f"Serving flatminima on http://{host}:{real_port}/", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
