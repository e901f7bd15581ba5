#!/usr/bin/env python3
"""Stand-in for Ollama in the end-to-end run: answers GET /api/tags with one model, so the agent reports ready.

Usage: stub-ollama.py PORT_FILE  — binds 127.0.0.1 on a free port, writes the port number to PORT_FILE once it is
listening, and serves until terminated. Standard library only.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TAGS = json.dumps({"models": [{"name": "stub:latest", "model": "stub:latest", "size": 1}]}).encode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.split("?", 1)[0] == "/api/tags":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(TAGS)))
            self.end_headers()
            self.wfile.write(TAGS)
        else:
            self.send_error(404)

    def log_message(self, *args):  # one line per request would drown the script's output
        pass


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: stub-ollama.py PORT_FILE")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, sys.argv[1])  # the port file appears complete or not at all
    server.serve_forever()


if __name__ == "__main__":
    main()
