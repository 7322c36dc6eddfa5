"""An administrator at a real browser: headless Chromium (the same DevTools-over-a-pipe
driver as browser_pages.py), through mcpgate's admin pages, filling forms with the keyboard.

usage: browser_admin.py CHROMIUM BASE_URL EMAIL PASSWORD SCREENSHOT_DIR PHASE [USER_EMAIL]

PHASE `setup`: sign in; create a user (with markup in their name), a team with that user, a
role with an allow grant and a role with a deny grant, give both to the team; ask the access
explainer whether the user may call `echo` on `demo`. PHASE `audit`: sign in; filter the
audit log for the user's denied calls; visit every page for the report (headings, labels,
focus path, 360px fit) and screenshots.

It only observes; the Rust test decides. Prints one JSON report.
"""

import json
import os
import sys
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser_pages import EMAIL_FOCUSED, FITS, FOCUSED, PAGE, Browser  # noqa: E402

ROWS = """[...document.querySelectorAll('tbody tr')].map(r =>
  [...r.querySelectorAll('td')].map(c => c.innerText.trim()))"""

UNLABELLED = """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(f => !(f.labels && f.labels.length) && !f.getAttribute('aria-label')).map(f => f.id || f.name)"""


def fill(b, field_id, text):
    """Focus a field and type into it, as a person would."""
    b.js(f"document.getElementById({json.dumps(field_id)}).focus()")
    b.js(f"document.getElementById({json.dumps(field_id)}).value = ''")
    b.type(text)


def choose(b, field_id, value):
    b.js(f"(() => {{ const s = document.getElementById({json.dumps(field_id)}); s.value = {json.dumps(value)}; }})()")


def submit_from(b, field_id):
    """Enter in a field submits its form; waits for the next page."""
    b.js(f"document.getElementById({json.dumps(field_id)}).focus()")
    b.loaded(b.enter)


def sign_in(b, base, email, password):
    b.goto(base + "/login")
    b.wait_for(EMAIL_FOCUSED)
    b.type(email)
    b.tab()
    b.type(password)
    b.tab()
    b.loaded(b.enter)


def page_report(b, shot=None):
    page = b.js(PAGE)
    page["rows"] = b.js(ROWS)
    page["unlabelled"] = b.js(UNLABELLED)
    page["flash"] = b.js("(document.querySelector('.flash') || {}).innerText || null")
    if shot:
        b.screenshot(shot)
    b.viewport(360, 740)
    page["fits_phone"] = b.js(FITS)
    b.viewport(720, 760)
    return page


def focus_path(b, steps):
    b.js("document.activeElement && document.activeElement.blur()")
    path = []
    for _ in range(steps):
        b.tab()
        path.append(b.js(FOCUSED))
    return path


def setup(b, base, user_email, report):
    b.goto(base + "/admin/users")
    fill(b, "new-email", user_email)
    fill(b, "new-name", "<script>window.pwned=1</script>Grace")
    fill(b, "new-password", "grace's long password")
    submit_from(b, "new-password")
    report["users"] = page_report(b)
    report["users"]["pwned"] = b.js("window.pwned === 1")

    b.goto(base + "/admin/teams")
    fill(b, "team-name", "core")
    submit_from(b, "team-name")
    report["team_created"] = page_report(b)
    choose(b, "member-team", "core")
    fill(b, "member-email", user_email)
    submit_from(b, "member-email")
    report["member_added"] = page_report(b)

    for name, effect, target in (("demo-tools", "allow", ""), ("no-echo", "deny", "echo")):
        b.goto(base + "/admin/roles")
        fill(b, "role-name", name)
        choose(b, "grant-effect", effect)
        fill(b, "grant-action", "tools/call" if effect == "deny" else "tools/*")
        fill(b, "grant-upstream", "demo")
        fill(b, "grant-target", target)
        submit_from(b, "grant-target")
        report[f"role_{name}"] = page_report(b)
        b.goto(base + "/admin/teams")
        choose(b, "role-team", "core")
        choose(b, "team-role", name)
        b.js("document.querySelector('form[action=\"/admin/teams/roles\"] button').focus()")
        b.loaded(b.enter)
    report["teams"] = page_report(b)

    b.goto(base + "/admin/explain?" + urlencode({"user": user_email, "upstream": "demo", "tool": "echo"}))
    report["explain"] = page_report(b)
    report["explain"]["verdict"] = b.js("(document.getElementById('verdict') || {}).innerText || null")


def audit(b, base, user_email, shots, report):
    b.goto(base + "/admin/audit")
    fill(b, "f-user", user_email)
    fill(b, "f-tool", "echo")
    choose(b, "f-decision", "deny")
    submit_from(b, "f-tool")
    report["audit"] = page_report(b, os.path.join(shots, "admin-audit.png"))
    report["audit_url"] = b.js("location.href")
    # Keyboard only: Tab from the top goes through the navigation, then the filters.
    report["audit"]["focus_path"] = focus_path(b, 14)
    pages = {}
    for path, shot in (("/", "home.png"), ("/admin/users", "admin-users.png"),
                       ("/admin/roles", "admin-roles.png"), ("/admin/teams", "admin-teams.png"),
                       ("/admin/upstreams", "admin-upstreams.png"),
                       ("/admin/clients", "admin-clients.png"),
                       ("/admin/explain?" + urlencode({"user": user_email, "upstream": "demo", "tool": "echo"}),
                        "admin-explain.png"),
                       ("/admin/dashboard", "admin-dashboard.png"),
                       ("/no/such/page", None)):
        b.goto(base + path)
        pages[path] = page_report(b, os.path.join(shots, shot) if shot else None)
    report["pages"] = pages


def main(chromium, base, email, password, shots, phase, user_email="grace@example.com"):
    b = Browser(chromium)
    report = {}
    try:
        b.open_tab()
        sign_in(b, base, email, password)
        report["after_sign_in"] = b.js("location.href")
        if phase == "setup":
            setup(b, base, user_email, report)
        else:
            audit(b, base, user_email, shots, report)
        report["requested"] = sorted({e["params"]["request"]["url"] for e in b.events
                                      if e.get("method") == "Network.requestWillBeSent"})
    finally:
        b.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:8])
