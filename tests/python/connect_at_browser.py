#!/usr/bin/env python3
"""A person connecting an account in headless Chromium, for the connect e2e test.

usage: connect_at_browser.py CHROMIUM CONNECT_URL EMAIL PASSWORD

Opens the connect URL (mcpgate sends the browser to its sign-in page first), signs in with
the keyboard, submits the connect page's form (the browser then follows the upstream
authorization server's redirects back to mcpgate's callback) and prints one JSON object: the
URL and text of each page the browser landed on.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser_pages import Browser  # noqa: E402

PAGE = "({url: location.href, text: document.body.innerText})"


def main(chromium: str, url: str, email: str, password: str) -> None:
    b = Browser(chromium)
    pages = []
    try:
        b.open_tab()
        b.goto(url)
        pages.append(b.js(PAGE))
        b.type(email)
        b.tab()
        b.type(password)
        b.loaded(b.enter)
        pages.append(b.js(PAGE))
        b.loaded(lambda: b.js("document.querySelector('form button[type=submit]').click()"))
        pages.append(b.js(PAGE))
    finally:
        b.close()
    print(json.dumps({"pages": pages}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
