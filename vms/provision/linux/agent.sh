#!/bin/sh
# A Linux guest, provisioned once (before the clean snapshot); needs nothing from a network.
#   - the experiment NIC (found by MAC): fixed address, default route and DNS via the gateway;
#     the management NIC (vagrant's, DHCP) keeps no default route;
#   - the agent is not a service: the box's desktop session (autologin on tty1, X, openbox)
#     starts its launcher from the session's autostart. testbed copies the agent's code to
#     /opt/testbed and its token and listen address to ~vagrant/.config/testbed/agent.env
#     before every run (run-setup.sh): the snapshot holds no token.
set -eu
MAC="$1"; ADDRESS="$2"; GATEWAY="$3"
IFACE=""
for d in /sys/class/net/*; do
    [ "$(cat "$d/address")" = "$MAC" ] && IFACE=$(basename "$d")
done
[ -n "$IFACE" ] || { echo "testbed: no network interface with MAC $MAC" >&2; exit 1; }
cat > /etc/systemd/network/05-experiment.network <<UNIT
[Match]
MACAddress=$MAC

[Network]
Address=$ADDRESS
Gateway=$GATEWAY
LinkLocalAddressing=no
IPv6AcceptRA=no
UNIT
# glibc asks A and AAAA at once; one at a time, with fast retries (see lab/provider.py)
printf 'nameserver %s\noptions single-request-reopen timeout:1 attempts:3\n' "$GATEWAY" > /etc/resolv.conf
systemctl restart systemd-networkd   # (networkctl needs D-Bus, which the box has not)
install -d -m 755 /opt/testbed /opt/testbed/vendor
systemctl disable --now testbed-agent.service >/dev/null 2>&1 || true   # (an older box's)
echo "testbed: $IFACE ($MAC) is $ADDRESS via $GATEWAY; the agent starts in the desktop session"
