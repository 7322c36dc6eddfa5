#!/usr/bin/env python3
"""A person at a browser, for clients that open one: `BROWSER=path/to/this` makes Python's
`webbrowser.open(url)` run `person_at_browser.py URL`.

Headless Chromium (MCPGATE_CHROMIUM) opens URL; the "person" types the email
(MCPGATE_SIGNIN_EMAIL) and password (from MCPGATE_SIGNIN_PASSWORD_FILE) with the keyboard,
presses Enter, Tabs to Allow on the consent page and presses Enter, then prints the text of
the page the browser ends on (the client's own redirect page) to stderr.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser_pages import EMAIL_FOCUSED, FOCUSED, Browser  # noqa: E402


def main(url: str) -> None:
    with open(os.environ["MCPGATE_SIGNIN_PASSWORD_FILE"]) as f:
        password = f.read().strip()
    b = Browser(os.environ["MCPGATE_CHROMIUM"])
    try:
        b.open_tab()
        b.goto(url)
        # The cursor is in the email field once autofocus ran (after the load event): a
        # person sees that before typing. Typing earlier typed into nothing, the Enter then
        # submitted nothing and the wait for the next page never ended (the old hang).
        b.wait_for(EMAIL_FOCUSED)
        b.type(os.environ["MCPGATE_SIGNIN_EMAIL"])
        b.tab()
        b.type(password)
        b.loaded(b.enter)
        for _ in range(8):
            b.tab()
            focused = b.js(FOCUSED)
            if focused and focused["text"] == "Allow":
                break
        else:
            raise RuntimeError("Tab never reached Allow")
        b.loaded(b.enter)
        print(f"browser ended on: {b.js('document.body.innerText')}", file=sys.stderr)
    finally:
        b.close()


if __name__ == "__main__":
    main(sys.argv[1])
