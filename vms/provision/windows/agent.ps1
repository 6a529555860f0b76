# The agent must run in the logged-on user's desktop session (an SSH or WinRM session has none):
# auto-logon for the vagrant user, and a scheduled task at logon that starts the agent.
# The experiment NIC (found by its MAC) gets its fixed address, the gateway as its default
# route and DNS server; the management NIC keeps vagrant's DHCP address and no default route.
param([Parameter(Mandatory)][int]$Port, [Parameter(Mandatory)][string]$Mac,
      [Parameter(Mandatory)][string]$Address, [Parameter(Mandatory)][string]$Gateway)
$ErrorActionPreference = "Stop"
$winlogon = "HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon"
Set-ItemProperty -Path $winlogon -Name AutoAdminLogon -Value "1"
Set-ItemProperty -Path $winlogon -Name DefaultUserName -Value "vagrant"
Set-ItemProperty -Path $winlogon -Name DefaultPassword -Value "vagrant"
$exp = Get-NetAdapter | Where-Object { $_.MacAddress -eq ($Mac.ToUpper() -replace ':', '-') }
if (-not $exp) { throw "testbed: no network adapter with MAC $Mac" }
$mgmt = Get-NetAdapter | Where-Object { $_.ifIndex -ne $exp.ifIndex -and $_.Status -eq "Up" } |
        Select-Object -First 1
# The agent starts in the logged-on session, from a scheduled task at logon: its launcher
# (python -m testbed.agent.launch) imports the agent, then waits for C:\testbed\agent.env, the
# run's token and listen address, which run-setup.ps1 writes over SSH after every snapshot
# restore; the loop starts it again when it ends.
$session = @'
& powershell -ExecutionPolicy Bypass -File C:\testbed\set-resolution.ps1
New-Item -ItemType Directory -Force -Path C:\testbed\agent | Out-Null
while ($true) {
    & python -m testbed.agent.launch C:\testbed\agent.env --workdir C:\testbed\agent *>> C:\testbed\agent.log
    Start-Sleep -Milliseconds 200
}
'@
Set-Content -Path C:\testbed\session-agent.ps1 -Value $session
$action = New-ScheduledTaskAction -Execute "powershell.exe" `
    -Argument "-NoProfile -WindowStyle Hidden -ExecutionPolicy Bypass -File C:\testbed\session-agent.ps1"
$trigger = New-ScheduledTaskTrigger -AtLogOn -User "vagrant"
$principal = New-ScheduledTaskPrincipal -UserId "vagrant" -LogonType Interactive -RunLevel Highest
Register-ScheduledTask -TaskName "testbed-agent" -Action $action -Trigger $trigger -Principal $principal -Force | Out-Null
# Experiment traffic leaves through the gateway only.
Get-NetRoute -DestinationPrefix "0.0.0.0/0" -ErrorAction SilentlyContinue | Remove-NetRoute -Confirm:$false
Get-NetIPAddress -InterfaceIndex $exp.ifIndex -AddressFamily IPv4 -ErrorAction SilentlyContinue |
    Remove-NetIPAddress -Confirm:$false
New-NetIPAddress -InterfaceIndex $exp.ifIndex -IPAddress $Address -PrefixLength 24 -DefaultGateway $Gateway | Out-Null
Set-DnsClientServerAddress -InterfaceIndex $exp.ifIndex -ServerAddresses $Gateway
New-NetFirewallRule -DisplayName "testbed agent" -Direction Inbound -Protocol TCP -LocalPort $Port `
    -InterfaceAlias $mgmt.Name -Action Allow | Out-Null
