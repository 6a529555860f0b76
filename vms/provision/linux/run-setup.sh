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
# The CA joins the system bundle and the hashed directory directly: update-ca-certificates
# rebuilds both from every certificate, which takes 30 s under software emulation. The clean
# snapshot holds no testbed CA, so each run adds exactly this run's.
if grep -q "BEGIN CERTIFICATE" "$crt"; then
    cat "$crt" >> /etc/ssl/certs/ca-certificates.crt
    ln -sf "$crt" "/etc/ssl/certs/$(openssl x509 -hash -noout -in "$crt").0"
else
    rm -f "$crt"
fi
rm -rf /opt/testbed/testbed
mv "$UPLOAD/testbed" /opt/testbed/testbed
rm -rf "$UPLOAD"
systemctl restart testbed-agent
