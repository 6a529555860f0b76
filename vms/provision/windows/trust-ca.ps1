# The gateway's mitmproxy CA in the machine's trusted roots, so TLS the client does not pin
# can be opened and recorded at the gateway.
$ErrorActionPreference = "Stop"
$ca = "C:\testbed\mitmproxy-ca-cert.cer"
if (-not (Test-Path $ca)) { throw "testbed: $ca is missing" }
Import-Certificate -FilePath $ca -CertStoreLocation Cert:\LocalMachine\Root | Out-Null
