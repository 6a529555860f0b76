# Python for the agent, from an installer testbed copies to C:\testbed\python-installer.exe
# (guests have no internet access of their own).
$ErrorActionPreference = "Stop"
$installer = "C:\testbed\python-installer.exe"
if (-not (Test-Path $installer)) { throw "testbed: $installer is missing (copy a Python 3 installer there)" }
Start-Process -FilePath $installer -Wait -ArgumentList "/quiet", "InstallAllUsers=1", "PrependPath=1", "Include_test=0"
& "C:\Program Files\Python3*\python.exe" -m pip install --no-index --find-links C:\testbed\wheels testbed
