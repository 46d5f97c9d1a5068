#!/usr/bin/env bash
# Confirms by hand, with curl, each failure and warning the conformance suite reported
# against the Authlib peer (conformance/peers/authlib, on 127.0.0.1:8002 or BASE).
# Usage: bash reports/conformance/confirm-authlib.sh [BASE]
set -uo pipefail
B=${1:-http://127.0.0.1:8002}
G=urn:ietf:params:oauth:grant-type:device_code
APPROVE="python3 $(dirname "$0")/../../conformance/approvers/authlib-approver.py --base $B"
show() { echo; echo "\$ $*"; "$@"; echo; }
da() { curl -s "$B/device_authorization" -d client_id=authlib-device "$@"; }
field() { python3 -c "import sys,json; print(json.load(sys.stdin)['$1'])"; }

echo "== DA-10: client_id twice is accepted (a code is issued)"
show curl -s -w ' HTTP %{http_code}' "$B/device_authorization" -d client_id=authlib-device -d client_id=authlib-device
echo "== DA-10: scope twice is accepted too"
show curl -s -w ' HTTP %{http_code}' "$B/device_authorization" -d client_id=authlib-device -d scope=read -d scope=read
echo "== DA-11: Basic and client_secret in the body at once are accepted"
show curl -s -w ' HTTP %{http_code}' -u authlib-confidential:confidential-secret "$B/device_authorization" -d client_secret=confidential-secret
echo "== DA-13: a client registered without the device grant gets codes"
show curl -s -w ' HTTP %{http_code}' "$B/device_authorization" -d client_id=authlib-backend

R=$(da -d scope=read); DC=$(echo "$R" | field device_code); UC=$(echo "$R" | field user_code)
echo "== TR-04: an unknown device_code is invalid_request, not invalid_grant"
show curl -s -w ' HTTP %{http_code}' "$B/token" -d grant_type=$G -d client_id=authlib-device -d device_code=deviceflow-no-such-code
echo "== TR-07: another client polling the code gets unauthorized_client, not invalid_grant"
show curl -s -w ' HTTP %{http_code}' -u authlib-confidential:confidential-secret "$B/token" -d grant_type=$G -d device_code=$DC
echo "== TR-08: device_code twice is answered as a normal poll"
show curl -s -w ' HTTP %{http_code}' "$B/token" -d grant_type=$G -d client_id=authlib-device -d device_code=$DC -d device_code=$DC

echo "== TS-08: approve, then poll twice: two tokens"
$APPROVE "$UC" approve && echo "(approved $UC through the peer's /device page)"
show curl -s -w ' HTTP %{http_code}' "$B/token" -d grant_type=$G -d client_id=authlib-device -d device_code=$DC
show curl -s -w ' HTTP %{http_code}' "$B/token" -d grant_type=$G -d client_id=authlib-device -d device_code=$DC
echo "== TS-10: five parallel polls of the redeemed code: five tokens"
for i in 1 2 3 4 5; do curl -s -o /dev/null -w "%{http_code}\n" "$B/token" -d grant_type=$G -d client_id=authlib-device -d device_code=$DC & done; wait

echo "== BCP-01: refresh rotation; RT1's reuse is refused, but RT2, issued from it, still works"
RT1=$(curl -s "$B/token" -d grant_type=$G -d client_id=authlib-device -d device_code=$DC | field refresh_token)
RT2=$(curl -s "$B/token" -d grant_type=refresh_token -d client_id=authlib-device -d refresh_token=$RT1 | field refresh_token)
echo "RT1 exchanged for RT2"
show curl -s -w ' HTTP %{http_code}' "$B/token" -d grant_type=refresh_token -d client_id=authlib-device -d refresh_token=$RT1
show curl -s -w ' HTTP %{http_code}' "$B/token" -d grant_type=refresh_token -d client_id=authlib-device -d refresh_token=$RT2
