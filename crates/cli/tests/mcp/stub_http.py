"""A minimal Streamable HTTP MCP server that answers in JSON and records what it receives.

Usage: stub_http.py DIR

Listens on a free loopback port and writes it to DIR/port. Every POST body it receives is
appended to DIR/seen.jsonl as {"session": Mcp-Session-Id header, "body": the JSON}. It
answers `initialize` (assigning session `stub-session`), echoes `tools/call` arguments back
as text, answers other requests with `{}`, and notifications and responses with 202.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        with open(os.path.join(DIR, "seen.jsonl"), "a") as f:
            f.write(json.dumps({"session": self.headers.get("Mcp-Session-Id"), "body": body}) + "\n")
        batch = isinstance(body, list)
        answers = [a for a in (answer(m) for m in (body if batch else [body])) if a is not None]
        if not answers:
            self.send_response(202)
            self.end_headers()
            return
        out = json.dumps(answers if batch else answers[0]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.send_header("Mcp-Session-Id", "stub-session")
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self):
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_DELETE(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def answer(message):
    if "id" not in message or "method" not in message:
        return None
    method = message["method"]
    if method == "initialize":
        result = {"protocolVersion": message["params"]["protocolVersion"],
                  "capabilities": {"tools": {}}, "serverInfo": {"name": "stub", "version": "1"}}
    elif method == "tools/call":
        args = message["params"].get("arguments", {})
        result = {"content": [{"type": "text", "text": "Echo: " + str(args.get("message", args))}]}
    else:
        result = {}
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


if __name__ == "__main__":
    DIR = sys.argv[1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(os.path.join(DIR, "port.tmp"), "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
    server.serve_forever()
