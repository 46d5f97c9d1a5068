#!/usr/bin/env python3
"""Approver for django-oauth-toolkit (DOT): plays the person through DOT's own pages.

    dot-approver.py [--base URL] [--user U] [--password P] USER_CODE approve|deny

Signs in with a Django session (/accounts/login/), submits the user code on DOT's
verification page (/o/device/), then presses accept or deny on /o/device-confirm/....
Follows each form's CSRF token, like a browser. Exits 0 when the decision was taken,
65 (EX_DATAERR, with the page's error on stderr) when DOT refused the code or the
decision (its page said the code is incorrect, expired or already used), 1 when this
approver could not do its job (sign-in failed, DOT unreachable, a page it does not
recognise), 2 on bad usage. deviceflow-conformance reads 65, and only 65, as the
server's refusal; any other failure makes the case inconclusive.

For deviceflow-conformance's command approver (and loadgen's):
    --approver command --approver-command \
      "python3 conformance/approvers/dot-approver.py --base http://127.0.0.1:8001 {user_code} {action}"

Standard library only, so any python3 runs it.
"""
import argparse
import http.cookiejar
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
ERRORS = re.compile(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', re.S)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    def __init__(self, base):
        self.base = base.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def request(self, path, data=None):
        url = path if path.startswith("http") else self.base + path
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(url, data=body)
        if body is not None:
            req.add_header("Referer", url)
        try:
            with self.opener.open(req, timeout=15) as r:
                return r.status, dict(r.headers), r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:  # 3xx (not followed) and 4xx/5xx
            return e.code, dict(e.headers), e.read().decode("utf-8", "replace")

    def form_token(self, path):
        status, _, html = self.request(path)
        m = CSRF.search(html)
        if status != 200 or not m:
            fail(f"GET {path}: HTTP {status}, no CSRF token on the page")
        return m.group(1), html


# deviceflow-conformance's approver contract: the server refused (approver::REFUSED_EXIT).
REFUSED = 65


def fail(message, code=1):
    print(f"dot-approver: {message}", file=sys.stderr)
    sys.exit(code)


def page_errors(html):
    return [re.sub(r"<[^>]+>", " ", e).strip() for e in ERRORS.findall(html)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="http://127.0.0.1:8001")
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", default="alice-password-1")
    ap.add_argument("user_code")
    ap.add_argument("action", choices=["approve", "deny"])
    args = ap.parse_args()
    b = Browser(args.base)

    token, _ = b.form_token("/accounts/login/?next=/o/device/")
    status, headers, html = b.request(
        "/accounts/login/",
        {"username": args.user, "password": args.password, "csrfmiddlewaretoken": token, "next": "/o/device/"},
    )
    if status != 302:
        fail(f"sign-in as {args.user} failed: HTTP {status} {page_errors(html)}")

    token, _ = b.form_token("/o/device/")
    status, headers, html = b.request("/o/device/", {"user_code": args.user_code, "csrfmiddlewaretoken": token})
    confirm = headers.get("Location", "")
    if status != 302 or "/o/device-confirm/" not in confirm:
        errors = page_errors(html)
        if status == 200 and errors:
            # The form came back with DOT's own error ("Incorrect user code", "Expired
            # user code", "User code has already been used").
            fail(f"the user code {args.user_code} was refused: {errors}", REFUSED)
        fail(f"the user code {args.user_code} was not taken, and the page says no why: HTTP {status}")

    # DOT answers 404 on the confirm page once the grant is no longer pending.
    status, _, html = b.request(confirm)
    if status == 404:
        fail(f"the confirm page {confirm} says the request is no longer pending (HTTP 404)", REFUSED)
    m = CSRF.search(html)
    if status != 200 or not m:
        fail(f"GET {confirm}: HTTP {status}, no CSRF token on the page")
    action = "accept" if args.action == "approve" else "deny"
    status, headers, html = b.request(confirm, {"action": action, "csrfmiddlewaretoken": m.group(1)})
    if status == 404:
        fail(f"{action}: the request is no longer pending (HTTP 404)", REFUSED)
    if status != 302:
        fail(f"{action} was not taken: HTTP {status} {page_errors(html)}")


if __name__ == "__main__":
    main()
