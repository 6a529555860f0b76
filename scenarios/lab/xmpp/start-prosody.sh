#!/bin/sh
# Starts one lab XMPP server: creates the study's accounts (user:password words in the
# arguments), then runs prosody in the foreground. Rendered per daemon row ({config}, {name}).
set -e
cfg="{config}/prosody.cfg.lua"
for account in "$@"; do
    user=$(echo "$account" | cut -d: -f1)
    password=$(echo "$account" | cut -d: -f2-)
    prosodyctl --config "$cfg" register "$user" "{name}" "$password"
done
exec prosody --config "$cfg" -F
