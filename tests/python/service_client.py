"""An agent with no person at a browser: the Python `mcp` SDK's client-credentials support
against mcpgate, for the end-to-end tests.

usage: service_client.py URL ISSUER CLIENT_ID CLIENT_SECRET ALLOWED_TOOL DENIED_TOOL
Lists tools, calls ALLOWED_TOOL and DENIED_TOOL (each with {"text": "hi"}), and prints one
JSON object: the tool names, each call's text or error, and the token requests it made.
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.auth import TokenStorage
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken


class Memory(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def call(client: Client, tool: str) -> dict:
    try:
        result = await client.call_tool(tool, {"text": "hi"})
        return {
            "text": [getattr(c, "text", None) for c in result.content],
            "is_error": bool(result.is_error),
        }
    except Exception as e:  # a JSON-RPC error from the gateway
        return {"error": str(e)}


async def main(url: str, issuer: str, client_id: str, secret: str, allowed: str, denied: str) -> None:
    token_requests: list[dict] = []

    async def on_response(response: httpx2.Response) -> None:
        if response.request.url.path.endswith("/oauth/token"):
            body = response.request.content.decode()
            token_requests.append({"status": response.status_code, "body_has_resource": "resource=" in body})

    auth = ClientCredentialsOAuthProvider(
        server_url=url,
        storage=Memory(),
        client_id=client_id,
        client_secret=secret,
        issuer=issuer,
    )
    async with httpx2.AsyncClient(auth=auth, timeout=30, event_hooks={"response": [on_response]}) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="2026-07-28") as client:
            tools = await client.list_tools()
            allowed_result = await call(client, allowed)
            denied_result = await call(client, denied)
    print(
        json.dumps(
            {
                "tools": sorted(t.name for t in tools.tools),
                "allowed": allowed_result,
                "denied": denied_result,
                "token_requests": token_requests,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
