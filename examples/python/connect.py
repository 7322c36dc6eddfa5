"""Connect to an MCP server behind mcpgate with the Python `mcp` SDK, sign in, call a tool.

    python examples/python/connect.py http://127.0.0.1:8080/mcp/demo

The SDK finds mcpgate's OAuth metadata, registers itself as a client, and opens mcpgate's
sign-in page in your browser. After you sign in and allow access, the browser comes back to a
small listener this script runs on 127.0.0.1, the SDK exchanges the code for tokens, and the
script lists the tools and calls `echo`.

    --headless --email E --password-file F
        For tests and machines without a browser: an HTTP user agent submits mcpgate's
        sign-in and consent forms instead of a person.
"""

import argparse
import asyncio
import html
import re
import sys
import webbrowser
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken


class Memory:
    """Tokens and the client registration, kept for this run only."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, info):
        self.client = info


class Callback:
    """A one-shot HTTP listener on loopback for the browser's redirect back to this client."""

    def __init__(self):
        self.result: asyncio.Future = asyncio.get_running_loop().create_future()
        self.server = None
        self.url = ""

    async def start(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/callback"

    async def _handle(self, reader, writer):
        request_line = (await reader.readline()).decode("latin-1")
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        target = request_line.split(" ")[1] if " " in request_line else "/"
        query = parse_qs(urlparse(target).query)
        if urlparse(target).path != "/callback":
            body, status = "Not found", "404 Not Found"
        elif "error" in query:
            body, status = f"Sign-in failed: {html.escape(query['error'][0])}", "200 OK"
        else:
            body, status = "Signed in. You can close this tab and go back to the terminal.", "200 OK"
        page = f"<!doctype html><title>mcpgate</title><p>{body}</p>".encode()
        writer.write(f"HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\n"
                     f"content-length: {len(page)}\r\nconnection: close\r\n\r\n".encode() + page)
        await writer.drain()
        writer.close()
        if urlparse(target).path == "/callback" and not self.result.done():
            if "error" in query:
                self.result.set_exception(RuntimeError(f"authorization failed: {query}"))
            else:
                self.result.set_result(AuthorizationCodeResult(
                    code=query["code"][0], state=query.get("state", [None])[0],
                    iss=query.get("iss", [None])[0]))

    async def wait(self) -> AuthorizationCodeResult:
        try:
            return await asyncio.wait_for(self.result, timeout=300)
        finally:
            self.server.close()


def hidden(page: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    if not m:
        raise RuntimeError(f"no {name} field in page: {page[:300]}")
    return html.unescape(m.group(1))


async def submit_forms(start: str, email: str, password: str, redirect: str) -> None:
    """--headless: what a person does in the browser, done by submitting the forms."""
    async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as ua:
        url = start
        for _ in range(10):
            r = await ua.get(url)
            if r.is_redirect:
                url = urljoin(url, r.headers["location"])
                if url.startswith(redirect):
                    break
                continue
            if r.status_code != 200:
                raise RuntimeError(f"authorization page {r.status_code}: {r.text[:300]}")
            page = r.text
            if 'action="/login"' in page:
                r = await ua.post(urljoin(url, "/login"), data={
                    "email": email, "password": password, "csrf": hidden(page, "csrf"),
                    "return_to": hidden(page, "return_to")})
            elif 'action="/oauth/authorize"' in page:
                r = await ua.post(urljoin(url, "/oauth/authorize"), data={
                    "csrf": hidden(page, "csrf"), "request": hidden(page, "request"),
                    "decision": "approve"})
            else:
                raise RuntimeError(f"unexpected page: {page[:300]}")
            url = urljoin(url, r.headers["location"])
            if url.startswith(redirect):
                break
        else:
            raise RuntimeError("the authorization never came back to this client")
    # Deliver the redirect to our own listener, as the browser would.
    async with httpx2.AsyncClient(timeout=30) as ua:
        await ua.get(url)


async def main(args) -> None:
    callback = Callback()
    await callback.start()

    async def redirect_handler(authorization_url: str) -> None:
        if args.headless:
            with open(args.password_file) as f:
                password = f.read().strip()
            await submit_forms(authorization_url, args.email, password, callback.url)
            return
        print(f"Opening the sign-in page in your browser. If it does not open, visit:\n"
              f"  {authorization_url}\n", file=sys.stderr)
        # Off the event loop: some browsers' launchers wait, and the listener must keep serving.
        await asyncio.to_thread(webbrowser.open, authorization_url)

    provider = OAuthClientProvider(
        server_url=args.url,
        client_metadata=OAuthClientMetadata(
            client_name="mcpgate example (Python mcp SDK)",
            redirect_uris=[callback.url],
            grant_types=["authorization_code", "refresh_token"],
            token_endpoint_auth_method="none",
        ),
        storage=Memory(),
        redirect_handler=redirect_handler,
        callback_handler=callback.wait,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with Client(streamable_http_client(args.url, http_client=http)) as client:
            tools = await client.list_tools()
            print("tools: " + ", ".join(sorted(t.name for t in tools.tools)))
            result = await client.call_tool(args.tool, {"text": args.text})
            for block in result.content:
                print(f"{args.tool}: {getattr(block, 'text', block)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8080/mcp/demo",
                        help="the MCP endpoint on mcpgate (default: %(default)s)")
    parser.add_argument("--tool", default="echo", help="the tool to call (default: %(default)s)")
    parser.add_argument("--text", default="hello through mcpgate",
                        help="the text argument (default: %(default)s)")
    parser.add_argument("--headless", action="store_true",
                        help="submit the sign-in and consent forms without a browser")
    parser.add_argument("--email", default="admin@example.com")
    parser.add_argument("--password-file", default=".dev/admin-password")
    asyncio.run(main(parser.parse_args()))
