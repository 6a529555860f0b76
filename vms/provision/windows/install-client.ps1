# Install the client build: the installer's sha256 is checked first; nothing else runs if it
# differs. Silent-install arguments come from the scenario.
param([Parameter(Mandatory)][string]$Installer, [Parameter(Mandatory)][string]$Sha256,
      [string]$Arguments = "")
$ErrorActionPreference = "Stop"
if (-not (Test-Path $Installer)) { throw "testbed: installer $Installer is missing" }
$actual = (Get-FileHash -Algorithm SHA256 -Path $Installer).Hash.ToLower()
if ($actual -ne $Sha256.ToLower()) {
  throw "testbed: $Installer has sha256 $actual, the scenario names $Sha256: not installed"
}
$p = Start-Process -FilePath $Installer -ArgumentList $Arguments -Wait -PassThru
if ($p.ExitCode -ne 0) { throw "testbed: installer exited with $($p.ExitCode)" }
