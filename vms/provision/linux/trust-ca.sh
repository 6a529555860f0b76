#!/bin/sh
# The gateway's CA in every trust store of a Linux guest (root, before every run):
#     trust-ca.sh CRT [HOME...]
#   - the OS store: CRT where update-ca-certificates reads it
#     (/usr/local/share/ca-certificates), and — without running it: it rebuilds everything,
#     30 s under software emulation — in the system bundle and the hashed folder directly
#     (OpenSSL, GnuTLS);
#   - NSS: each HOME's ~/.pki/nssdb (browsers, mail and chat clients), with certutil when
#     libnss3-tools is installed;
#   - Java: /etc/ssl/certs/java/cacerts, with keytool when Java is installed.
# A store whose tool is missing is skipped with a line on stderr. ROOT (environment, default
# empty) prefixes every system path, so that tests can run this on a copy.
set -eu
CRT="$1"; shift
R="${ROOT:-}"
NAME=testbed-gateway
NICK="testbed gateway CA"
LOCAL="/usr/local/share/ca-certificates/$NAME.crt"
CERTS="$R/etc/ssl/certs"
[ "$CRT" -ef "$R$LOCAL" ] || install -D -m 644 "$CRT" "$R$LOCAL"
cat "$CRT" >> "$CERTS/ca-certificates.crt"
ln -sf "$LOCAL" "$CERTS/$(openssl x509 -hash -noout -in "$CRT").0"
if command -v certutil >/dev/null 2>&1; then
    for home in "$@"; do
        db="$home/.pki/nssdb"
        mkdir -p "$db"
        [ -f "$db/cert9.db" ] || certutil -N -d "sql:$db" --empty-password
        certutil -D -d "sql:$db" -n "$NICK" >/dev/null 2>&1 || true
        certutil -A -d "sql:$db" -n "$NICK" -t "C,," -i "$CRT"
        chown -R "$(stat -c %u:%g "$home")" "$home/.pki"
    done
else
    echo "testbed: certutil is not installed (libnss3-tools): no NSS database" >&2
fi
JAVA="$CERTS/java/cacerts"
if command -v keytool >/dev/null 2>&1 && [ -f "$JAVA" ]; then
    keytool -delete -keystore "$JAVA" -storepass changeit -alias "$NAME" >/dev/null 2>&1 || true
    keytool -importcert -noprompt -trustcacerts -keystore "$JAVA" -storepass changeit \
        -alias "$NAME" -file "$CRT" >/dev/null
else
    echo "testbed: no Java trust store here (keytool or $JAVA missing)" >&2
fi
