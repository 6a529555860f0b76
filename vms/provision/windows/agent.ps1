# The agent must run in the logged-on user's desktop session (a WinRM session has no desktop):
# auto-logon for the vagrant user, and a scheduled task at logon that starts the agent on the
# management network. The experiment network's default route goes to the gateway.
param([Parameter(Mandatory)][string]$Listen, [Parameter(Mandatory)][string]$Gateway)
$ErrorActionPreference = "Stop"
$winlogon = "HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon"
Set-ItemProperty -Path $winlogon -Name AutoAdminLogon -Value "1"
Set-ItemProperty -Path $winlogon -Name DefaultUserName -Value "vagrant"
Set-ItemProperty -Path $winlogon -Name DefaultPassword -Value "vagrant"
# The token arrives in C:\testbed\agent-token (written by testbed, readable by the user only).
$cmd = @"
powershell -ExecutionPolicy Bypass -File C:\testbed\set-resolution.ps1
set /p TESTBED_AGENT_TOKEN=<C:\testbed\agent-token
python -m testbed.agent --listen $Listen --workdir C:\testbed\agent
"@
Set-Content -Path C:\testbed\start-agent.cmd -Value $cmd
$action = New-ScheduledTaskAction -Execute "cmd.exe" -Argument "/c C:\testbed\start-agent.cmd"
$trigger = New-ScheduledTaskTrigger -AtLogOn -User "vagrant"
$principal = New-ScheduledTaskPrincipal -UserId "vagrant" -LogonType Interactive -RunLevel Highest
Register-ScheduledTask -TaskName "testbed-agent" -Action $action -Trigger $trigger -Principal $principal -Force | Out-Null
# Experiment traffic leaves through the gateway only.
Get-NetRoute -DestinationPrefix "0.0.0.0/0" -ErrorAction SilentlyContinue | Remove-NetRoute -Confirm:$false
$exp = Get-NetIPAddress -AddressFamily IPv4 | Where-Object { $_.IPAddress -like ($Gateway -replace '\.\d+$', '.*') } | Select-Object -First 1
New-NetRoute -DestinationPrefix "0.0.0.0/0" -InterfaceIndex $exp.InterfaceIndex -NextHop $Gateway | Out-Null
New-NetFirewallRule -DisplayName "testbed agent" -Direction Inbound -Protocol TCP -LocalPort ($Listen.Split(":")[1]) -Action Allow | Out-Null
