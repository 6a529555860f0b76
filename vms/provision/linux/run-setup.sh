#!/bin/sh
# The per-run set-up of a Linux guest (root, over ssh, from testbed/vagrant/guestsetup.py):
#     run-setup.sh NOW UPLOAD
# the clock; when UPLOAD holds code (testbed/, vendor/, builds/, these scripts), the code in
# /opt/testbed, and the agent's launcher restarted on it; the CA (PEM, may be empty) and then
# the agent's environment from stdin, separated by a line "--", so that neither appears on a
# command line or in a log. The environment goes to the file the desktop session's launcher
# (testbed.agent.launch) waits for; an empty one (staging the code before the clean snapshot)
# is not written.
set -eu
NOW="$1"; UPLOAD="$2"
date -s "@$NOW" >/dev/null
USER_HOME=$(getent passwd vagrant | cut -d: -f6)
CONF="$USER_HOME/.config/testbed"
install -d -m 700 -o vagrant -g vagrant "$CONF"
crt=/usr/local/share/ca-certificates/testbed-gateway.crt
env="$CONF/agent.env.tmp"
: > "$crt"
( umask 077; : > "$env" )
target=$crt
while IFS= read -r line; do
    if [ "$line" = "--" ]; then target=$env; continue; fi
    printf '%s\n' "$line" >> "$target"
done
if [ -d "$UPLOAD/testbed" ]; then
    rm -rf /opt/testbed/testbed /opt/testbed/builds /opt/testbed/vendor
    for d in testbed builds vendor; do
        if [ -d "$UPLOAD/$d" ]; then mv "$UPLOAD/$d" "/opt/testbed/$d"; fi
    done
    cp "$UPLOAD/run-setup.sh" "$UPLOAD/trust-ca.sh" /opt/testbed/
    chmod -R a+rX /opt/testbed
    # the launcher imported the code that was there: the session's loop starts it anew
    pkill -u vagrant -f testbed.agent.launch || true
fi
rm -rf "$UPLOAD"
# The CA goes into every trust store (trust-ca.sh: the OS store, the agent user's NSS
# database, Java's). The clean snapshot holds no testbed CA, so each run adds exactly this run's.
if grep -q "BEGIN CERTIFICATE" "$crt"; then
    sh /opt/testbed/trust-ca.sh "$crt" "$USER_HOME"
else
    rm -f "$crt"
fi
if [ -s "$env" ]; then
    chown vagrant:vagrant "$env"
    mv "$env" "$CONF/agent.env"   # (a rename: the launcher never reads half a file)
else
    rm -f "$env"
fi
