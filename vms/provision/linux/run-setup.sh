#!/bin/sh
# Before every run, on a guest just restored to its clean snapshot (root, over ssh):
# the clock, the gateway's CA in the trust store, the agent's code, token and address, and
# the agent started. testbed has unpacked this script and the agent's code (testbed/) into
# UPLOAD. The CA (PEM, may be empty) and then the agent's environment file come on stdin,
# separated by a line "--", so that neither appears on a command line or in a log.
set -eu
NOW="$1"; UPLOAD="$2"
date -s "@$NOW" >/dev/null
install -d -m 700 /etc/testbed
crt=/usr/local/share/ca-certificates/testbed-gateway.crt
: > "$crt"
( umask 077; : > /etc/testbed/agent.env )
target=$crt
while IFS= read -r line; do
    if [ "$line" = "--" ]; then target=/etc/testbed/agent.env; continue; fi
    printf '%s\n' "$line" >> "$target"
done
[ -s "$crt" ] || rm -f "$crt"
update-ca-certificates --fresh >/dev/null 2>&1
rm -rf /opt/testbed/testbed
mv "$UPLOAD/testbed" /opt/testbed/testbed
rm -rf "$UPLOAD"
systemctl restart testbed-agent
