#!/usr/bin/env bash
# Confirms by hand, with curl, each failure and warning the conformance suite reported
# against django-oauth-toolkit (../shared/peers/django-oauth-toolkit, on 127.0.0.1:8001 or BASE).
# Usage: bash reports/conformance/confirm-django-oauth-toolkit.sh [BASE]
set -uo pipefail
B=${1:-http://127.0.0.1:8001}
G=urn:ietf:params:oauth:grant-type:device_code
APPROVE="python3 $(dirname "$0")/../../conformance/approvers/dot-approver.py --base $B"
show() { echo; echo "\$ $*"; "$@"; echo; }
da() { curl -s "$B/o/device-authorization/" -d client_id=dot-device-client "$@"; }
field() { python3 -c "import sys,json; print(json.load(sys.stdin)['$1'])"; }

echo "== DA-02: charset parameter, and an empty POST without Content-Type"
show curl -s -w ' HTTP %{http_code}' "$B/o/device-authorization/" -H 'Content-Type: application/x-www-form-urlencoded; charset=UTF-8' --data-raw client_id=dot-device-client
show curl -s -o /dev/null -w 'HTTP %{http_code} %{content_type}' -X POST "$B/o/device-authorization/"

echo "== DA-04: unknown client"
show curl -s -w ' HTTP %{http_code}' "$B/o/device-authorization/" -d client_id=no-such-client

echo "== DA-10: client_id twice, and scope twice"
show curl -s -w ' HTTP %{http_code}' "$B/o/device-authorization/" -d client_id=dot-device-client -d client_id=dot-device-client
show curl -s -w ' HTTP %{http_code}' "$B/o/device-authorization/" -d client_id=dot-device-client -d scope=read -d scope=read

echo "== DR-10: headers of the device authorization response (no Cache-Control, no Pragma)"
show curl -s -D - -o /dev/null "$B/o/device-authorization/" -d client_id=dot-device-client

R=$(da); DC=$(echo "$R" | field device_code); UC=$(echo "$R" | field user_code)
echo "== TR-02: no device_code"
show curl -s -o /dev/null -w 'HTTP %{http_code} %{content_type}' "$B/o/token/" -d grant_type=$G -d client_id=dot-device-client
echo "== TR-03, TR-04, TS-02: empty and unknown device_code"
show curl -s -w ' HTTP %{http_code}' "$B/o/token/" -d grant_type=$G -d client_id=dot-device-client -d device_code=
show curl -s -w ' HTTP %{http_code}' "$B/o/token/" -d grant_type=$G -d client_id=dot-device-client -d device_code=deviceflow-no-such-code
echo "== TR-05: poll without client_id"
show curl -s -w ' HTTP %{http_code}' "$B/o/token/" -d grant_type=$G -d device_code=$DC
echo "== TR-07 (a): another client polls the code"
show curl -s -w ' HTTP %{http_code}' "$B/o/token/" -d grant_type=$G -d client_id=dot-device-client-b -d device_code=$DC
echo "== TR-08: device_code twice"
show curl -s -w ' HTTP %{http_code}' "$B/o/token/" -d grant_type=$G -d client_id=dot-device-client -d device_code=$DC -d device_code=$DC

echo "== TS-08: approve, then poll twice"
$APPROVE "$UC" approve && echo "(approved $UC through DOT's pages)"
show curl -s -w ' HTTP %{http_code}' "$B/o/token/" -d grant_type=$G -d client_id=dot-device-client -d device_code=$DC
show curl -s -w ' HTTP %{http_code}' "$B/o/token/" -d grant_type=$G -d client_id=dot-device-client -d device_code=$DC
echo "== TR-07 (b): after approval, the other client gets a token too"
show curl -s -w ' HTTP %{http_code}' "$B/o/token/" -d grant_type=$G -d client_id=dot-device-client-b -d device_code=$DC
echo "== TS-10: five parallel polls of the redeemed code: five tokens"
for i in 1 2 3 4 5; do curl -s -o /dev/null -w "%{http_code}\n" "$B/o/token/" -d grant_type=$G -d client_id=dot-device-client -d device_code=$DC & done; wait

echo "== BCP-01: refresh rotation; after RT1 is reused, RT2 still works"
RT1=$(curl -s "$B/o/token/" -d grant_type=$G -d client_id=dot-device-client -d device_code=$DC | field refresh_token)
RT2=$(curl -s "$B/o/token/" -d grant_type=refresh_token -d client_id=dot-device-client -d refresh_token=$RT1 | field refresh_token)
echo "RT1 exchanged for RT2"
show curl -s -w ' HTTP %{http_code}' "$B/o/token/" -d grant_type=refresh_token -d client_id=dot-device-client -d refresh_token=$RT1
show curl -s -w ' HTTP %{http_code}' "$B/o/token/" -d grant_type=refresh_token -d client_id=dot-device-client -d refresh_token=$RT2

echo "== UI-07: the user code typed with a dash added, or with a space, is refused by DOT's code page"
echo "   (RFC 8628 §6.1: strip the characters outside the code's set)"
R=$(da); UC=$(echo "$R" | field user_code)
show sh -c "$APPROVE '${UC:0:4}-${UC:4}' approve; echo \"exit \$?\""
R=$(da); UC=$(echo "$R" | field user_code)
show sh -c "$APPROVE '${UC:0:4} ${UC:4}' approve; echo \"exit \$?\""
echo "   The code typed lower-cased is refused too; RFC 8628 §6.1 asks upper-casing only of codes"
echo "   in the A-Z range, and DOT's hold digits: recorded by the suite, not judged."
R=$(da); UC=$(echo "$R" | field user_code)
show sh -c "$APPROVE $(echo "$UC" | tr 'A-Z' 'a-z') approve; echo \"exit \$?\""

echo "== UI-08: twenty user codes (DOT's alphabet 0-9A-V holds 0/O, 1/I/L, 5/S, 8/B)"
show sh -c "for i in \$(seq 20); do curl -s $B/o/device-authorization/ -d client_id=dot-device-client | python3 -c 'import sys,json; print(json.load(sys.stdin)[\"user_code\"], end=\" \")'; done; echo"

echo "== MD-01: the metadata has no device_authorization_endpoint"
show sh -c "curl -s $B/o/.well-known/oauth-authorization-server | python3 -c 'import sys,json; m=json.load(sys.stdin); print(\"device_authorization_endpoint\" in m)'"

echo "== UI-13: framing headers of the page verification_uri leads to"
show sh -c "curl -s -D - -o /dev/null '$B/accounts/login/?next=/o/device/' | grep -i -E 'x-frame-options|content-security-policy' || echo '(none)'"
echo "   and of the page verification_uri_complete leads to (each hop's status, Location and framing headers)"
R=$(da); VC=$(echo "$R" | field verification_uri_complete)
show sh -c "curl -s -L -D - -o /dev/null '$VC' | grep -i -E '^HTTP/|^location:|x-frame-options|content-security-policy' || echo '(none)'"
