#!/usr/bin/env python3
"""The console end to end in Debian's Chromium through Playwright (no browser download).

Usage: console_e2e.py BASE OWNER_EMAIL OWNER_PASSWORD RECIPIENT MESSAGE_ID WEBHOOK_ID DOMAIN WORKDIR

BASE is http://host:port of a running `postwerk serve`; the owner exists (made by the
CLI) and one message to RECIPIENT was delivered. Prints one `FAIL:` line per failure
and exits 1 when there was any; with POSTWERK_SCREENSHOTS=<dir>, saves full-page
screenshots of the main pages there.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import struct
import sys
import time
import traceback
import urllib.error
import urllib.request
from urllib.parse import unquote

from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"

(BASE, OWNER, PASSWORD, RECIPIENT, MESSAGE_ID, WEBHOOK_ID, DOMAIN, WORK) = sys.argv[1:9]
ANALYST, ANALYST_PASSWORD = "analyst.e2e@example.org", "analyst-password-e2e-1"
SHOTS = os.environ.get("POSTWERK_SCREENSHOTS")

failures = []
checked_pages = []
request_urls = []
header_problems = []


def fail(what):
    failures.append(what)
    print(f"FAIL: {what}", flush=True)


def ok(what):
    print(f"ok: {what}", flush=True)


def check(cond, what):
    if cond:
        ok(what)
    else:
        fail(what)
    return cond


# --- RFC 6238 TOTP (SHA-1, 30 s steps, 6 digits), independent of the server ---------

def totp_at(secret, step):
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">q", step), hashlib.sha1).digest()
    o = mac[19] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)


def now_step():
    return int(time.time()) // 30


# --- axe-core, bundled by the axe-playwright-python package --------------------------

def axe_source():
    import axe_playwright_python
    path = os.path.join(os.path.dirname(axe_playwright_python.__file__), "axe.min.js")
    with open(path, encoding="utf-8") as f:
        return f.read()


AXE = axe_source()


def axe_check(page, who, label):
    """Runs axe-core on the page; fails on any serious or critical violation."""
    # page.evaluate is not subject to the page's CSP (a <script> tag would be).
    page.evaluate(AXE)
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " targets: v.nodes.map(n => n.target.join(' ')), count: v.nodes.length})); }"
    )
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    minor = [v for v in result if v["impact"] not in ("serious", "critical")]
    checked_pages.append(f"{who}:{label}")
    for v in bad:
        fail(f"axe {who} {label}: {v['id']} ({v['impact']}) at {v['targets'][0]} "
             f"[{v['count']} nodes] {v['help']}")
    for v in minor:
        print(f"note: axe {who} {label}: {v['id']} ({v['impact']}) at {v['targets'][0]}")


def axe_self_test(browser):
    """axe-core must find a known violation on a known-bad page, or its silence means nothing."""
    page = browser.new_page()
    page.set_content('<!doctype html><html lang="en"><title>x</title><main>'
                     '<img src="data:,"><input type="text"></main></html>')
    page.evaluate(AXE)
    ids = page.evaluate("async () => (await axe.run(document)).violations.map(v => v.id)")
    check("image-alt" in ids and "label" in ids, f"axe-core finds violations on a bad page ({ids})")
    page.close()


def strict_script_csp(csp):
    d = {x.strip().split(" ")[0]: x.strip() for x in csp.split(";") if x.strip()}
    src = d.get("script-src") or d.get("default-src") or ""
    return (bool(src) and "'unsafe-inline'" not in src and "'unsafe-eval'" not in src
            and d.get("frame-ancestors", "").replace("frame-ancestors", "").strip() == "'none'")


def watch(page):
    page.on("request", lambda r: request_urls.append(unquote(r.url)))
    # A CSP violation (blocked inline script or style) or a script error shows here.
    # (4xx answers the test asks for, such as 403 pages, are logged too: not errors.)
    page.on("console", lambda m: m.type == "error"
            and not re.match(r"Failed to load resource: .* status of 4\d\d", m.text)
            and fail(f"browser console error on {page.url}: {m.text[:200]}"))
    page.on("pageerror", lambda e: fail(f"script error on {page.url}: {e}"))

    def on_response(r):
        if not r.url.startswith(BASE + "/ui"):
            return
        h = r.headers
        problems = []
        if not strict_script_csp(h.get("content-security-policy", "")):
            problems.append(f"CSP {h.get('content-security-policy')!r}")
        if h.get("referrer-policy") != "no-referrer":
            problems.append(f"Referrer-Policy {h.get('referrer-policy')!r}")
        if h.get("x-content-type-options") != "nosniff":
            problems.append(f"X-Content-Type-Options {h.get('x-content-type-options')!r}")
        if problems:
            header_problems.append(f"{r.status} {r.url}: {', '.join(problems)}")

    page.on("response", on_response)


def shot(page, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def goto(page, path, expect_status=200):
    resp = page.goto(BASE + path)
    status = resp.status if resp else None
    if status != expect_status:
        fail(f"GET {path} answered {status}, expected {expect_status}")
    return resp


def api_status(key, path):
    req = urllib.request.Request(BASE + path, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def sign_in(page, email, password, code=None):
    goto(page, "/ui/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    if code is not None:
        page.get_by_label("Authentication code", exact=True).fill(code)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_load_state()


def sign_out(page):
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_load_state()


def step(name, fn, *args):
    """Runs one part of the test; an exception fails that part, not the rest."""
    started = time.time()
    try:
        fn(*args)
        print(f"-- {name}: {time.time() - started:.1f} s", flush=True)
    except Exception as e:  # noqa: BLE001 - report and go on with the next part
        first = str(e).splitlines()[0] if str(e) else ""
        page = args[0] if args else None
        where = f" (at {page.url})" if page is not None and hasattr(page, "url") else ""
        fail(f"{name}: {type(e).__name__}: {first}{where}")
        traceback.print_exc()


# --- the parts ------------------------------------------------------------------------

def owner_second_factor(page):
    sign_in(page, OWNER, PASSWORD)
    check("/ui/login" not in page.url, "the owner signs in with email and password")
    goto(page, "/ui/account")
    axe_check(page, "owner", "account")
    page.get_by_role("button", name="Set up a second factor", exact=True).click()
    page.wait_for_load_state()
    secret = page.locator("#totp-secret").inner_text().strip()
    check(re.fullmatch(r"[A-Z2-7]+=*", secret) is not None, "the TOTP secret is shown")
    check(page.get_by_role("img", name=re.compile("QR")).is_visible(), "a QR code is shown")
    axe_check(page, "owner", "account (TOTP enrolment)")
    shot(page, "account")
    used = now_step()
    page.get_by_label("Code", exact=True).fill(totp_at(secret, used))
    page.get_by_role("button", name="Turn on", exact=True).click()
    page.wait_for_load_state()
    codes = page.locator("ul.codes li").count()
    check(codes > 0, f"recovery codes are shown once ({codes})")
    check(page.get_by_text("A second factor is set up").is_visible(), "the second factor is on")
    axe_check(page, "owner", "account (recovery codes)")
    goto(page, "/ui/account")
    check(page.locator("ul.codes li").count() == 0, "recovery codes are not shown again")
    sign_out(page)
    check("/ui/login" in page.url, "signing out goes to the sign-in page")

    # Without a code the sign-in is refused, with a visible error.
    sign_in(page, OWNER, PASSWORD)
    alert = page.get_by_role("alert")
    check("/ui/login" in page.url and alert.is_visible()
          and "second factor" in alert.inner_text(),
          "sign-in without a code is refused with a visible error")
    axe_check(page, "anonymous", "login (error)")
    # The confirming step is used up: the next one (within the allowed drift).
    login_step = max(used + 1, now_step())
    sign_in(page, OWNER, PASSWORD, totp_at(secret, login_step))
    check("/ui/login" not in page.url and page.get_by_role("button", name="Sign out").is_visible(),
          "the owner signs in with a TOTP code")


def owner_message(page):
    goto(page, "/ui/")
    axe_check(page, "owner", "overview")
    shot(page, "overview")
    # Keyboard: the first Tab reaches the skip link, which moves on to the content.
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    check(focused == "Skip to content", f"the first Tab stop is the skip link ({focused!r})")
    page.keyboard.press("Enter")
    check(page.url.endswith("#main"), "the skip link goes to the main content")
    goto(page, "/ui/messages")
    page.get_by_label("Recipient", exact=True).fill("nobody.e2e@example.test")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_load_state()
    check(page.locator("tbody tr", has_text=RECIPIENT).count() == 0,
          "a search for another address does not show the message")
    goto(page, "/ui/messages")
    page.get_by_label("Recipient", exact=True).fill(RECIPIENT)
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_load_state()
    row = page.locator("tbody tr", has_text=RECIPIENT)
    check(row.count() == 1, "the search by recipient finds the message")
    check(re.search(r"\bdelivered\b", row.first.inner_text()) is not None,
          "its status shows as delivered")
    axe_check(page, "owner", "messages (search)")
    shot(page, "messages")
    row.first.get_by_role("link").first.click()
    page.wait_for_load_state()
    check(page.url.endswith(f"/ui/messages/{MESSAGE_ID}"), "the message's page opens")
    check(RECIPIENT in page.inner_text("main"), "the message's page shows the recipient")
    axe_check(page, "owner", "message")


def owner_stream(page):
    goto(page, "/ui/streams")
    axe_check(page, "owner", "streams")
    page.get_by_role("button", name="Pause broadcast", exact=True).click()
    page.wait_for_load_state()
    axe_check(page, "owner", "stream pause form")
    page.get_by_label("Reason", exact=True).fill("console end-to-end check")
    page.get_by_role("button", name="Pause", exact=True).click()
    page.wait_for_load_state()
    goto(page, "/ui/streams")
    expect(page.get_by_role("button", name="Resume broadcast", exact=True)).to_be_visible()
    check("console end-to-end check" in page.inner_text("main"), "the pause reason is shown")
    axe_check(page, "owner", "streams (paused)")
    shot(page, "streams")
    page.get_by_role("button", name="Resume broadcast", exact=True).click()
    page.wait_for_load_state()
    goto(page, "/ui/streams")
    expect(page.get_by_role("button", name="Pause broadcast", exact=True)).to_be_visible()
    ok("a stream is paused and resumed")


def owner_keys(page):
    goto(page, "/ui/keys")
    axe_check(page, "owner", "keys")
    page.get_by_label("Name", exact=True).fill("console-e2e")
    page.get_by_label("read", exact=True).check()
    page.get_by_role("button", name="Create key", exact=True).click()
    page.wait_for_load_state()
    key = page.locator("#new-secret").inner_text().strip()
    check(len(key) > 20, "the new key is shown once")
    axe_check(page, "owner", "keys (new key shown)")
    shot(page, "keys")
    check(api_status(key, "/v1/messages") == 200, "the new key reads the API (200)")
    goto(page, "/ui/keys")
    check(key not in page.content(), "the key is not shown again")
    # Revoking asks first: dismissed, nothing happens; accepted, the key is revoked.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Revoke console-e2e", exact=True).click()
    check(api_status(key, "/v1/messages") == 200, "a dismissed confirmation revokes nothing")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke console-e2e", exact=True).click()
    page.wait_for_load_state()
    status = api_status(key, "/v1/messages")
    check(status == 401, f"the revoked key is refused by the API ({status})")


def owner_privacy(page):
    goto(page, "/ui/privacy")
    axe_check(page, "owner", "privacy")
    page.get_by_label("Email address", exact=True).fill(RECIPIENT)
    page.get_by_role("button", name="Look up", exact=True).click()
    page.wait_for_load_state()
    check(page.get_by_role("heading", name=RECIPIENT).is_visible(), "the look-up shows the person")
    check(MESSAGE_ID in page.content() or "Console end-to-end" in page.inner_text("main"),
          "the look-up lists the message")
    axe_check(page, "owner", "privacy (look-up)")
    shot(page, "privacy")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export", exact=True).click()
    data = open(dl.value.path(), "rb").read().decode("utf-8", "replace")
    try:
        json.loads(data)
        ok("the export is JSON")
    except ValueError:
        fail("the export is not JSON")
    check(RECIPIENT in data, "the export contains the address")
    check(page.get_by_role("button", name="Restrict processing", exact=True).is_visible(),
          "restricting processing is offered")
    page.get_by_label("Type the email address again to confirm", exact=True).fill(RECIPIENT)
    page.get_by_role("button", name="Erase this person", exact=True).click()
    page.wait_for_load_state()
    axe_check(page, "owner", "privacy (erased)")
    goto(page, "/ui/privacy")
    page.get_by_label("Email address", exact=True).fill(RECIPIENT)
    page.get_by_role("button", name="Look up", exact=True).click()
    page.wait_for_load_state()
    main = page.inner_text("main")
    check("Nothing is held on this address." in main
          or ("No messages to this address." in main and "Console end-to-end" not in main),
          "after erasure a new look-up shows nothing held")
    goto(page, "/ui/privacy/audit")
    axe_check(page, "owner", "privacy audit")
    # The register pages by 50: 51 requests registered through the API with the session.
    goto(page, "/ui/privacy")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    before = len(page.request.get(BASE + "/v1/privacy/requests?limit=1000").json()["requests"])
    for i in range(51):
        answer = page.request.post(BASE + "/v1/privacy/requests", headers={"X-CSRF-Token": csrf},
                                   data={"kind": "access", "email": f"register{i}@example.net",
                                         "note": f"paging-{i:02d}"})
        if answer.status != 201:
            fail(f"registering request {i}: {answer.status} {answer.text()[:200]}")
            return
    goto(page, "/ui/privacy")
    check(page.get_by_role("link", name="Next requests", exact=True).is_visible(),
          "a register of 51 requests offers a next page")
    page.get_by_role("link", name="Next requests", exact=True).click()
    page.wait_for_load_state()
    rows = page.locator("section[aria-labelledby=requests-h] tbody tr").count()
    check(rows == before + 1, f"the next page holds the requests after the 50th ({rows} rows, {before} before)")
    axe_check(page, "owner", "privacy (register page 2)")


def owner_other_pages(page):
    for path, label in [("/ui/suppressions", "suppressions"), ("/ui/domains", "domains"),
                        (f"/ui/domains/{DOMAIN}", "domain"), ("/ui/webhooks", "webhooks"),
                        (f"/ui/webhooks/{WEBHOOK_ID}", "webhook"), ("/ui/users", "users")]:
        goto(page, path)
        axe_check(page, "owner", label)
        if label == "domain":
            shot(page, "domain")
    goto(page, "/ui/no-such-page", expect_status=404)
    axe_check(page, "owner", "not found")


def owner_german(page):
    """The console in German (the account's language): lang="de" and no violations."""
    goto(page, "/ui/account")
    page.get_by_label("Language of the console", exact=True).select_option("de")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_load_state()
    for path, label in [("/ui/", "overview"), ("/ui/streams", "streams"),
                        ("/ui/privacy", "privacy"), ("/ui/account", "account")]:
        goto(page, path)
        check(page.locator("html").get_attribute("lang") == "de", f"{label} in German has lang=de")
        axe_check(page, "owner (de)", label)
    check(page.get_by_role("button", name="Abmelden", exact=True).is_visible(),
          "the console speaks German")
    page.get_by_label("Sprache der Konsole", exact=True).select_option("en")
    page.get_by_role("button", name="Speichern", exact=True).click()
    page.wait_for_load_state()
    check(page.get_by_role("button", name="Sign out", exact=True).is_visible(),
          "and English again")


def owner_makes_analyst(page):
    goto(page, "/ui/users")
    page.get_by_label("Email", exact=True).fill(ANALYST)
    page.get_by_label("Initial password", exact=True).fill(ANALYST_PASSWORD)
    page.get_by_label("Role", exact=True).select_option("analyst")
    page.get_by_role("button", name="Add user", exact=True).click()
    page.wait_for_load_state()
    check(page.locator("tbody th", has_text=ANALYST).count() == 1, "the analyst is listed")
    axe_check(page, "owner", "users (after adding)")


def analyst(page):
    sign_in(page, ANALYST, ANALYST_PASSWORD)
    check("/ui/login" not in page.url, "the analyst signs in")
    for path, label in [("/ui/", "overview"), ("/ui/messages", "messages"),
                        (f"/ui/messages/{MESSAGE_ID}", "message"),
                        ("/ui/suppressions", "suppressions"), ("/ui/domains", "domains"),
                        (f"/ui/domains/{DOMAIN}", "domain"), ("/ui/webhooks", "webhooks"),
                        (f"/ui/webhooks/{WEBHOOK_ID}", "webhook"), ("/ui/account", "account"),
                        ("/ui/privacy", "privacy")]:
        resp = page.goto(BASE + path)
        if resp is None or resp.status not in (200, 403):
            fail(f"analyst GET {path} answered {resp.status if resp else None}")
        axe_check(page, "analyst", f"{label} ({resp.status if resp else '?'})")
    goto(page, "/ui/streams")
    pauses = page.get_by_role("button", name=re.compile(r"^Pause\b")).count()
    check(pauses == 0, f"the analyst sees no Pause buttons ({pauses})")
    axe_check(page, "analyst", "streams")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    forged = page.request.post(BASE + "/ui/streams/broadcast/pause",
                               form={"csrf": csrf, "reason": "forged"}, max_redirects=0)
    check(forged.status == 403, f"a forged pause by the analyst gets 403 ({forged.status})")
    # Refused for the role, with a valid token (not as an expired form).
    check("Your role does not allow this" in forged.text(),
          "the forged pause gets the 'Not allowed' page for the analyst's role")
    goto(page, "/ui/streams")
    check(page.get_by_role("button", name=re.compile("^Resume")).count() == 0
          and "forged" not in page.inner_text("main"), "the stream was not paused")
    goto(page, "/ui/keys", expect_status=403)
    check("Not allowed" in page.inner_text("main"), "/ui/keys shows the 'Not allowed' page")
    axe_check(page, "analyst", "keys (403)")


def anonymous(page):
    goto(page, "/ui/login")
    axe_check(page, "anonymous", "login")
    resp = page.goto(BASE + "/ui/messages")
    check("/ui/login" in page.url, "a page without a session goes to the sign-in page")


def main():
    started = time.time()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        step("axe self-test", axe_self_test, browser)
        owner_ctx = browser.new_context(accept_downloads=True, locale="en-US",
                                        viewport={"width": 1280, "height": 900})
        anon = owner_ctx.new_page()
        anon.set_default_timeout(10000)
        watch(anon)
        step("anonymous", anonymous, anon)
        anon.close()

        page = owner_ctx.new_page()
        page.set_default_timeout(10000)
        watch(page)
        step("second factor", owner_second_factor, page)
        step("messages", owner_message, page)
        step("streams", owner_stream, page)
        step("API keys", owner_keys, page)
        step("other pages", owner_other_pages, page)
        step("German", owner_german, page)
        step("users", owner_makes_analyst, page)
        step("privacy desk", owner_privacy, page)

        analyst_ctx = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        apage = analyst_ctx.new_page()
        apage.set_default_timeout(10000)
        watch(apage)
        step("analyst", analyst, apage)
        browser.close()

    for who in (RECIPIENT, OWNER, ANALYST, "nobody.e2e@example.test"):
        leaked = [u for u in request_urls if who.lower() in u.lower()]
        check(not leaked, f"{who} appears in no request URL" + (f" ({leaked[0][:120]})" if leaked else ""))
    for problem in header_problems[:10]:
        fail(f"security headers: {problem}")
    if not header_problems:
        ok(f"security headers on every console response ({len(request_urls)} requests)")
    print(f"axe-core checked {len(checked_pages)} page states; {time.time() - started:.1f} s")
    if failures:
        print(f"{len(failures)} FAILURES", flush=True)
        sys.exit(1)
    print("console end to end: ok")


if __name__ == "__main__":
    main()
