"""A raw JSON-RPC client for what the SDK does not send: batches, and a latency benchmark.

Usage:
  raw.py batch DIR -- CMD ARGS...   one batch [read_file, write_file]; prints the answers
  raw.py bench N DIR -- CMD ARGS... N sequential read_file calls; prints latency figures (ms)
  raw.py list -- CMD ARGS...        the names tools/list answers with, as a JSON array
"""
import json
import os
import subprocess
import sys
import time


class Session:
    def __init__(self, command):
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )
        self.out = self.proc.stdout

    def send(self, message):
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def answers(self, ids):
        """Reads lines until every id in `ids` is answered; returns {id: answer}."""
        got = {}
        while set(ids) - set(got):
            line = self.out.readline()
            if not line:
                raise SystemExit(f"the server closed before answering {set(ids) - set(got)}")
            message = json.loads(line)
            for m in message if isinstance(message, list) else [message]:
                if "id" in m and "method" not in m:
                    if m["id"] in got:
                        raise SystemExit(f"two answers for id {m['id']}")
                    got[m["id"]] = m
        return got

    def initialize(self):
        self.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "writ-raw", "version": "1"}}})
        self.answers([0])
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def call(id_, tool, args):
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call",
            "params": {"name": tool, "arguments": args}}


def batch(directory, command):
    s = Session(command)
    s.initialize()
    s.send([
        call(1, "read_file", {"path": os.path.join(directory, "hello.txt")}),
        call(2, "write_file", {"path": os.path.join(directory, "batch.txt"), "content": "x"}),
    ])
    got = s.answers([1, 2])
    s.close()
    print(json.dumps({"read": got[1], "write": got[2]}))


def bench(n, directory, command):
    s = Session(command)
    s.initialize()
    path = os.path.join(directory, "hello.txt")
    times = []
    for i in range(1, n + 1):
        start = time.perf_counter()
        s.send(call(i, "read_file", {"path": path}))
        answer = s.answers([i])[i]
        times.append((time.perf_counter() - start) * 1000)
        if "result" not in answer or answer["result"].get("isError"):
            raise SystemExit(f"call {i} failed: {answer}")
    s.close()
    times.sort()
    print(json.dumps({
        "n": n,
        "median_ms": times[n // 2],
        "p99_ms": times[min(n - 1, int(n * 0.99))],
        "mean_ms": sum(times) / n,
    }))


def list_tools(command):
    s = Session(command)
    s.initialize()
    s.send({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
    got = s.answers([1])
    s.close()
    print(json.dumps(sorted(t["name"] for t in got[1]["result"]["tools"])))


if __name__ == "__main__":
    split = sys.argv.index("--")
    command = sys.argv[split + 1:]
    if sys.argv[1] == "batch":
        batch(sys.argv[2], command)
    elif sys.argv[1] == "list":
        list_tools(command)
    elif sys.argv[1] == "bench":
        bench(int(sys.argv[2]), sys.argv[3], command)
    else:
        raise SystemExit(__doc__)
