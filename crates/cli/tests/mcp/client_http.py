"""An MCP client (the official Python SDK) over Streamable HTTP.

Usage: client_http.py URL ALLOWED_TOOL ALLOWED_ARGS DENIED_TOOL DENIED_ARGS

Lists the tools, calls ALLOWED_TOOL then DENIED_TOOL (arguments as JSON objects), and prints
what it saw as one JSON object on stdout.
"""
import asyncio
import json
import sys

from mcp import ClientSession

try:
    from mcp.client.streamable_http import streamable_http_client as connect
except ImportError:  # older SDKs
    from mcp.client.streamable_http import streamablehttp_client as connect


def summary(result):
    text = "".join(getattr(c, "text", "") for c in result.content)
    return {"isError": bool(getattr(result, "is_error", None) or getattr(result, "isError", False)), "text": text}


async def main(url, allowed, allowed_args, denied, denied_args):
    async with connect(url) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            allowed_result = await session.call_tool(allowed, allowed_args)
            denied_result = await session.call_tool(denied, denied_args)
            print(json.dumps({
                "tools": sorted(t.name for t in tools.tools),
                "allowed": summary(allowed_result),
                "denied": summary(denied_result),
            }))


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(a[0], a[1], json.loads(a[2]), a[3], json.loads(a[4])))
