"""A real MCP client (the Python `mcp` SDK) doing mcpgate's whole OAuth flow, headless.

usage: oauth_flow.py MCP_URL MODE EMAIL PASSWORD [options as JSON]
options: {"cimd": URL of a client metadata document (else DCR),
          "federated": {"provider": ID, "login_hint": ACCOUNT}: sign in with that identity
              provider from mcpgate's sign-in page instead of a password (EMAIL and PASSWORD
              are then unused; the test realm signs in the account named by login_hint),
          "wait_for_expiry": seconds to sleep before a second tool call (to force a refresh),
          "revoke": true to revoke the access token at the end and report what the gateway says}

The browser is replaced by an HTTP user agent that keeps cookies and submits mcpgate's
sign-in and consent forms, stopping when the redirect reaches the client's redirect_uri (no
one listens there). Prints one JSON report.
"""

import asyncio
import html
import json
import re
import sys
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
import mcp.client.auth.oauth2 as oauth2
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT = "http://127.0.0.1:33333/callback"


class Memory:
    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None
        self.issued: list[str] = []

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens
        self.issued.append(tokens.access_token)

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, info):
        self.client = info


def hidden(page: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    if not m:
        raise RuntimeError(f"no {name} field in page: {page[:300]}")
    return html.unescape(m.group(1))


def provider_link(page: str, provider: str, login_hint: str) -> str:
    """The sign-in page's "Sign in with ..." link for `provider`, with a login_hint added."""
    m = re.search(rf'href="(/login/{re.escape(provider)}\?[^"]*)"', page)
    if not m:
        raise RuntimeError(f"no sign-in link for provider {provider}: {page[:500]}")
    return f"{html.unescape(m.group(1))}&{urlencode({'login_hint': login_hint})}"


async def browse(start: str, email: str, password: str,
                 federated: dict | None = None) -> AuthorizationCodeResult:
    """Follows the authorization like a person at a browser would (through the identity
    provider's pages too, when signing in with one)."""
    async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as ua:
        url = start
        for _ in range(20):
            r = await ua.get(url)
            if r.status_code in (302, 303, 307):
                url = urljoin(url, r.headers["location"])
                if url.startswith(REDIRECT):
                    break
                continue
            if r.status_code != 200:
                raise RuntimeError(f"authorization page {r.status_code}: {r.text[:300]}")
            page = r.text
            if federated and f'action="/login/{federated["provider"]}"' in page:
                # Consent before federating: approve, then on to the identity provider.
                form = {name: hidden(page, name) for name in ("csrf", "return_to", "login_hint")}
                form["decision"] = "approve"
                r = await ua.post(urljoin(url, f'/login/{federated["provider"]}'), data=form)
                url = urljoin(url, r.headers["location"])
                continue
            if 'action="/login"' in page and federated:
                url = urljoin(url, provider_link(page, federated["provider"],
                                                 federated["login_hint"]))
                continue
            if 'action="/login"' in page:
                form = {"email": email, "password": password, "csrf": hidden(page, "csrf"),
                        "return_to": hidden(page, "return_to")}
                r = await ua.post(urljoin(url, "/login"), data=form)
            elif 'action="/oauth/authorize"' in page:
                form = {"csrf": hidden(page, "csrf"), "request": hidden(page, "request"),
                        "decision": "approve"}
                r = await ua.post(urljoin(url, "/oauth/authorize"), data=form)
            else:
                raise RuntimeError(f"unexpected page: {page[:300]}")
            url = urljoin(url, r.headers["location"])
            if url.startswith(REDIRECT):
                break
        else:
            raise RuntimeError("the authorization never reached the redirect URI")
    q = parse_qs(urlparse(url).query)
    if "error" in q:
        raise RuntimeError(f"authorization error: {q}")
    return AuthorizationCodeResult(code=q["code"][0], state=q.get("state", [None])[0],
                                   iss=q.get("iss", [None])[0])


async def main(url: str, mode: str, email: str, password: str, options: dict) -> None:
    storage = Memory()
    pending: dict = {}
    cimd = options.get("cimd")
    if cimd and cimd.startswith("http://127.0.0.1"):
        # Test shim: the SDK accepts only https metadata-document URLs; the gateway under test
        # fetches loopback http documents only because its test configuration allows it.
        oauth2.is_valid_client_metadata_url = lambda u: u == cimd

    async def redirect_handler(authorization_url: str) -> None:
        pending["result"] = await browse(authorization_url, email, password,
                                         options.get("federated"))

    async def callback_handler() -> AuthorizationCodeResult:
        return pending.pop("result")

    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="mcpgate python e2e",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=cimd,
    )
    report: dict = {}
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            tools = await client.list_tools()
            first = await client.call_tool("echo", {"text": "first call"})
            report["tools"] = sorted(t.name for t in tools.tools)
            report["echo"] = [getattr(c, "text", None) for c in first.content]
            if options.get("wait_for_expiry"):
                await asyncio.sleep(options["wait_for_expiry"])
                again = await client.call_tool("echo", {"text": "after expiry"})
                report["echo_after_expiry"] = [getattr(c, "text", None) for c in again.content]
    report["client_id"] = storage.client.client_id if storage.client else None
    report["tokens_issued"] = len(storage.issued)
    if options.get("revoke") and storage.tokens:
        async with httpx2.AsyncClient(timeout=30) as raw:
            origin = f"{urlparse(url).scheme}://{urlparse(url).netloc}"
            r = await raw.post(f"{origin}/oauth/revoke",
                               data={"token": storage.tokens.access_token,
                                     "client_id": report["client_id"]})
            report["revoke_status"] = r.status_code
            r = await raw.post(url, headers={"Authorization": f"Bearer {storage.tokens.access_token}",
                                             "Accept": "application/json, text/event-stream"},
                               json={"jsonrpc": "2.0", "id": 9, "method": "ping"})
            report["after_revoke_status"] = r.status_code
            report["after_revoke_challenge"] = r.headers.get("www-authenticate")
    print(json.dumps(report))


if __name__ == "__main__":
    opts = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], opts))
