#!/bin/sh
# Before every run, on a guest just restored to its clean snapshot (root, over ssh):
# the clock, the gateway's CA in the trust store, the agent's code, token and address, and
# the agent started by the desktop session's launcher. testbed has unpacked this script and the agent's code (testbed/) into
# UPLOAD. The CA (PEM, may be empty) and then the agent's environment file come on stdin,
# separated by a line "--", so that neither appears on a command line or in a log.
set -eu
NOW="$1"; UPLOAD="$2"
date -s "@$NOW" >/dev/null
USER_HOME=$(getent passwd vagrant | cut -d: -f6)
CONF="$USER_HOME/.config/testbed"
install -d -m 700 -o vagrant -g vagrant "$CONF"
crt=/usr/local/share/ca-certificates/testbed-gateway.crt
: > "$crt"
( umask 077; : > "$CONF/agent.env.tmp" )
target=$crt
while IFS= read -r line; do
    if [ "$line" = "--" ]; then target="$CONF/agent.env.tmp"; continue; fi
    printf '%s\n' "$line" >> "$target"
done
# The CA goes into every trust store (trust-ca.sh: the OS store, the agent user's NSS
# database, Java's). The clean snapshot holds no testbed CA, so each run adds exactly this run's.
if grep -q "BEGIN CERTIFICATE" "$crt"; then
    sh "$UPLOAD/trust-ca.sh" "$crt" "$USER_HOME"
else
    rm -f "$crt"
fi
rm -rf /opt/testbed/testbed /opt/testbed/builds
mv "$UPLOAD/testbed" /opt/testbed/testbed
[ -d "$UPLOAD/builds" ] && mv "$UPLOAD/builds" /opt/testbed/builds
if [ -d "$UPLOAD/vendor" ]; then   # the agent's pure-Python modules (pyautogui & co.)
    rm -rf /opt/testbed/vendor && mv "$UPLOAD/vendor" /opt/testbed/vendor
fi
chmod -R a+rX /opt/testbed
rm -rf "$UPLOAD"
# the session's launcher (testbed-session-agent) waits for this file and starts the agent
chown vagrant:vagrant "$CONF/agent.env.tmp"
mv "$CONF/agent.env.tmp" "$CONF/agent.env"
