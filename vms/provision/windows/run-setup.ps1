# The per-run set-up of a Windows guest, over SSH (OpenSSH), after every snapshot restore:
#     powershell -File C:\testbed\run-setup.ps1 -Now UNIXTIME     < CA PEMs, "--", KEY=VALUE lines
# the clock; the gateway's CA (and the lab's) in the machine's trusted roots; the agent's
# environment (token, listen address) in C:\testbed\agent.env, readable by the vagrant user
# only, which the session's launcher (session-agent.ps1) waits for. Secrets come on stdin,
# never on a command line.
param([Parameter(Mandatory)][long]$Now)
$ErrorActionPreference = "Stop"
Set-Date -Date ([DateTimeOffset]::FromUnixTimeSeconds($Now).LocalDateTime) | Out-Null
$lines = [Console]::In.ReadToEnd() -split "`r?`n"
$cut = [Array]::IndexOf($lines, "--")
if ($cut -lt 0) { throw "testbed: no '--' line on stdin" }
$pem = ($lines[0..$cut] | Where-Object { $_ -ne "--" }) -join "`n"
$i = 0
foreach ($m in [regex]::Matches($pem, "-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----")) {
    $file = "C:\testbed\ca-$i.pem"
    Set-Content -Path $file -Value $m.Value -Encoding ascii
    Import-Certificate -FilePath $file -CertStoreLocation Cert:\LocalMachine\Root | Out-Null
    Remove-Item $file
    $i++
}
$env_lines = @($lines[($cut + 1)..($lines.Length - 1)] | Where-Object { $_ -match "=" })
if ($env_lines.Count -gt 0) {
    $tmp = "C:\testbed\agent.env.tmp"
    New-Item -ItemType File -Force -Path $tmp | Out-Null
    $acl = New-Object System.Security.AccessControl.FileSecurity
    $acl.SetAccessRuleProtection($true, $false)   # no inherited access
    foreach ($who in @("vagrant", "SYSTEM")) {
        $acl.AddAccessRule((New-Object System.Security.AccessControl.FileSystemAccessRule($who, "FullControl", "Allow")))
    }
    Set-Acl -Path $tmp -AclObject $acl
    Set-Content -Path $tmp -Value $env_lines -Encoding ascii
    Move-Item -Force -Path $tmp -Destination C:\testbed\agent.env   # the launcher never reads half
}
