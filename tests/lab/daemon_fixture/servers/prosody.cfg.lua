-- prosody for the lab: unprivileged, its data and logs in the run
pidfile = "{data}/prosody.pid"
data_path = "{data}"
log = { info = "{logs}/prosody.log"; error = "{logs}/prosody.err" }
interfaces = { "{address}" }
c2s_ports = { 5222 }
s2s_ports = { 5269 }
http_ports = { }
https_ports = { 5281 }
https_interfaces = { "{address}" }
https_ssl = { certificate = "{cert}"; key = "{key}" }
ssl = { certificate = "{cert}"; key = "{key}"; cafile = "{ca}" }
http_files_dir = "{config}"
certificates = "{config}"
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "http_files" }
modules_disabled = { "posix" }
VirtualHost "{name}"
