#!/bin/sh
# A Linux guest: Xvfb desktop, the agent on the management network, default route via the
# gateway on the experiment network.
set -eu
LISTEN="$1"; GATEWAY="$2"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq xvfb xclip scrot python3-venv python3-tk >/dev/null
python3 -m venv /opt/testbed && /opt/testbed/bin/pip install -q /tmp/testbed-guest/*.whl 2>/dev/null || true
ip route replace default via "$GATEWAY"
cat > /etc/systemd/system/testbed-agent.service <<UNIT
[Unit]
Description=testbed agent
[Service]
Environment=DISPLAY=:1 XDG_SESSION_TYPE=x11
EnvironmentFile=-/etc/testbed/agent.env
ExecStartPre=/bin/sh -c 'Xvfb :1 -screen 0 1024x768x24 -nolisten tcp &'
ExecStart=/opt/testbed/bin/python -m testbed.agent --listen $LISTEN --workdir /var/lib/testbed-agent
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload && systemctl enable --now testbed-agent || true
