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
# The CA goes into every trust store (trust-ca.sh: the OS store, the agent user's NSS
# database, Java's). The clean snapshot holds no testbed CA, so each run adds exactly this run's.
if grep -q "BEGIN CERTIFICATE" "$crt"; then
    sh "$UPLOAD/trust-ca.sh" "$crt" "$(getent passwd vagrant | cut -d: -f6)"
else
    rm -f "$crt"
fi
rm -rf /opt/testbed/testbed
mv "$UPLOAD/testbed" /opt/testbed/testbed
rm -rf "$UPLOAD"
systemctl restart testbed-agent
