"""A real MCP client (the Python `mcp` SDK) for mcpgate's end-to-end tests.

usage: mcp_client.py URL MODE TOKEN|- [TOOL ARGS_JSON]
MODE is `legacy` (2025: initialize, sessions) or `2026-07-28` (stateless); `-` sends no token.
Lists tools, calls TOOL (default `echo` with {"text": "hello from python"}), and prints one JSON object: the results plus what went over the
wire (HTTP methods, protocol versions, whether a session id came back), so the caller can
compare a run through mcpgate with a run straight to the upstream.
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main(url: str, mode: str, token: str | None, tool: str, args: dict) -> None:
    wire: list[dict] = []

    async def on_response(response: httpx2.Response) -> None:
        wire.append(
            {
                "method": response.request.method,
                "status": response.status_code,
                "version": response.request.headers.get("mcp-protocol-version"),
                "session": "mcp-session-id" in response.headers,
            }
        )

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(
        headers=headers, timeout=30, event_hooks={"response": [on_response]}
    ) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            tools = await client.list_tools()
            result = await client.call_tool(tool, args)
    print(
        json.dumps(
            {
                "tools": sorted(t.name for t in tools.tools),
                "echo": [getattr(c, "text", None) for c in result.content],
                "is_error": bool(result.is_error),
                "wire": wire,
            }
        )
    )


if __name__ == "__main__":
    token = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
    tool = sys.argv[4] if len(sys.argv) > 4 else "echo"
    args = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {"text": "hello from python"}
    asyncio.run(main(sys.argv[1], sys.argv[2], token, tool, args))
