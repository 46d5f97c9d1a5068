#!/usr/bin/env python3
"""Approver for the Authlib peer (conformance/peers/authlib): plays the person through
its verification page.

    authlib-approver.py [--base URL] [--user U] [--password P] USER_CODE approve|deny

POSTs the code as typed, with the person's credentials and decision, to /device. Exits
0 when the decision was taken, 65 (EX_DATAERR, with the page's message on stderr) when
the peer refused the code (400: not valid or expired; 409: already used), 1 when this
approver could not do its job (unreachable, wrong credentials, a server error), 2 on
bad usage. deviceflow-conformance reads 65, and only 65, as the server's refusal.
Standard library only.

For deviceflow-conformance's command approver:
    --approver command --approver-command \\
      "python3 conformance/approvers/authlib-approver.py --base http://127.0.0.1:8002 {user_code} {action}"
"""
import argparse
import re
import sys
import urllib.error
import urllib.parse
import urllib.request


# deviceflow-conformance's approver contract: the server refused (approver::REFUSED_EXIT).
REFUSED = 65


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", default="http://127.0.0.1:8002")
    p.add_argument("--user", default="alice")
    p.add_argument("--password", default="alice-password-1")
    p.add_argument("user_code")
    p.add_argument("action", choices=["approve", "deny"])
    a = p.parse_args()
    body = urllib.parse.urlencode(
        {"user_code": a.user_code, "username": a.user, "password": a.password, "action": a.action}
    ).encode()
    try:
        with urllib.request.urlopen(a.base.rstrip("/") + "/device", data=body, timeout=10) as r:
            r.read()
        return 0
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        m = re.search(r"<p>(.*?)</p>", text, re.S)
        said = m.group(1) if m else text[:200]
        if e.code in (400, 409):
            print(f"the peer refused the code (HTTP {e.code}): {said}", file=sys.stderr)
            return REFUSED
        print(f"the peer did not take the decision (HTTP {e.code}): {said}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"cannot reach {a.base}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
