-- prosody for the XMPP federation scenario (scenarios/xmpp-federation-lab.yaml): one host per
-- daemon row, unprivileged, its data and logs in the run. Clients connect with direct TLS
-- ("old-style SSL", port 5223): the gateway's mitmproxy cannot follow XMPP's STARTTLS on 5222,
-- but intercepts a TLS stream from its first byte. Servers federate on 5269 (dialback;
-- certificates from the lab CA).
pidfile = "{data}/prosody.pid"
data_path = "{data}"
log = { info = "{logs}/prosody.log"; error = "{logs}/prosody.err" }
interfaces = { "{address}" }
c2s_ports = { 5222 }
c2s_direct_tls_ports = { 5223 }
s2s_ports = { 5269 }
http_ports = { }
https_ports = { }
ssl = { certificate = "{cert}"; key = "{key}"; cafile = "{ca}" }
certificates = "{config}"
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false
authentication = "internal_plain"
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "offline";
                    "private"; "vcard_legacy"; "blocklist"; "carbons" }
modules_disabled = { "posix" }
VirtualHost "{name}"
