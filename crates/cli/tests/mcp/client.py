"""An MCP client (the official Python SDK) driving a server command over stdio.

Usage: client.py DIR -- CMD ARGS...

Lists the tools, reads DIR/hello.txt with `read_file`, tries `write_file` on DIR/new.txt,
and prints what it saw as one JSON object on stdout.
"""
import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def summary(result):
    text = "".join(getattr(c, "text", "") for c in result.content)
    return {"isError": bool(getattr(result, "is_error", None) or getattr(result, "isError", False)), "text": text}


async def main(directory, command):
    params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            read_result = await session.call_tool(
                "read_file", {"path": os.path.join(directory, "hello.txt")}
            )
            write_result = await session.call_tool(
                "write_file", {"path": os.path.join(directory, "new.txt"), "content": "x"}
            )
            print(json.dumps({
                "tools": sorted(t.name for t in tools.tools),
                "read": summary(read_result),
                "write": summary(write_result),
            }))


if __name__ == "__main__":
    split = sys.argv.index("--")
    asyncio.run(main(sys.argv[1], sys.argv[split + 1:]))
