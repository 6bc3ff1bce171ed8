"""A raw Streamable HTTP client for what the SDK does not send: a batch.

Usage: raw_http.py URL ALLOWED_TOOL ALLOWED_ARGS DENIED_TOOL DENIED_ARGS

Initializes a session, POSTs one batch [ALLOWED (id 1), DENIED (id 2)], reads the answer
(JSON or an event stream) and prints {"content_type": …, "answers": {id: answer}}.
"""
import json
import sys
import urllib.request

ACCEPT = "application/json, text/event-stream"


def post(url, body, session=None):
    headers = {"Content-Type": "application/json", "Accept": ACCEPT}
    if session:
        headers["Mcp-Session-Id"] = session
        headers["MCP-Protocol-Version"] = "2025-03-26"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    return urllib.request.urlopen(request, timeout=30)


def messages(response):
    """Every JSON-RPC message in a response, JSON or event stream."""
    kind = response.headers.get("Content-Type", "")
    if kind.startswith("text/event-stream"):
        out, data = [], []
        for raw in response:
            line = raw.decode().rstrip("\r\n")
            if line == "":
                if data:
                    out.append(json.loads("\n".join(data)))
                data = []
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        return kind, out
    body = response.read()
    if not body:
        return kind, []
    value = json.loads(body)
    return kind, value if isinstance(value, list) else [value]


def main(url, allowed, allowed_args, denied, denied_args):
    init = post(url, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {},
        "clientInfo": {"name": "writ-raw", "version": "1"}}})
    session = init.headers.get("Mcp-Session-Id")
    messages(init)
    post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session).read()
    kind, got = messages(post(url, [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
         "params": {"name": allowed, "arguments": allowed_args}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": denied, "arguments": denied_args}},
    ], session))
    answers = {}
    for m in got:
        for one in m if isinstance(m, list) else [m]:
            if "id" in one and "method" not in one:
                answers[str(one["id"])] = one
    print(json.dumps({"content_type": kind, "answers": answers}))


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], json.loads(a[2]), a[3], json.loads(a[4]))
