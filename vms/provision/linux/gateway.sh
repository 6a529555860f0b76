#!/bin/sh
# The gateway: the guests' only way out. Forwarding on, redirects off, TCP from the
# experiment network redirected to mitmdump (transparent) on :8080, UDP/443 dropped so QUIC
# falls back to TCP. tcpdump and mitmdump are started by testbed for each run.
set -eu
EXP_NET="$1"; EXP_IP="$2"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq tcpdump iptables python3-venv >/dev/null
sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0
IFACE=$(ip -o -4 addr show | awk -v ip="$EXP_IP" '$4 ~ "^"ip"/" {print $2}')
iptables -t nat -C PREROUTING -i "$IFACE" -p tcp -j REDIRECT --to-ports 8080 2>/dev/null ||
  iptables -t nat -A PREROUTING -i "$IFACE" -p tcp ! -d "$EXP_IP" -j REDIRECT --to-ports 8080
iptables -C FORWARD -i "$IFACE" -p udp --dport 443 -j DROP 2>/dev/null ||
  iptables -A FORWARD -i "$IFACE" -p udp --dport 443 -j DROP
python3 -m venv /opt/testbed && /opt/testbed/bin/pip install -q mitmproxy
echo "gateway ready on $IFACE for $EXP_NET"
