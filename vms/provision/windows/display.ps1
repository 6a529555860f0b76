# 100 % DPI and a fixed resolution, so reference images match on every guest.
$ErrorActionPreference = "Stop"
$desktop = "HKCU:\Control Panel\Desktop"
Set-ItemProperty -Path $desktop -Name LogPixels -Value 96 -Type DWord
Set-ItemProperty -Path $desktop -Name Win8DpiScaling -Value 0 -Type DWord
# Default user too (the auto-logged-on account may be created later).
reg load HKU\DefaultUser C:\Users\Default\NTUSER.DAT | Out-Null
reg add "HKU\DefaultUser\Control Panel\Desktop" /v LogPixels /t REG_DWORD /d 96 /f | Out-Null
reg add "HKU\DefaultUser\Control Panel\Desktop" /v Win8DpiScaling /t REG_DWORD /d 0 /f | Out-Null
reg unload HKU\DefaultUser | Out-Null
# 1024x768: applied at the next logon by the agent's start-up script (display.cmd below),
# because a WinRM session (session 0) has no display to change.
$set = @'
Add-Type @"
using System; using System.Runtime.InteropServices;
public class Res {
  [StructLayout(LayoutKind.Sequential, CharSet=CharSet.Ansi)] public struct DEVMODE {
    [MarshalAs(UnmanagedType.ByValTStr, SizeConst=32)] public string dmDeviceName;
    public short dmSpecVersion, dmDriverVersion, dmSize, dmDriverExtra; public int dmFields;
    public int dmPositionX, dmPositionY, dmDisplayOrientation, dmDisplayFixedOutput;
    public short dmColor, dmDuplex, dmYResolution, dmTTOption, dmCollate;
    [MarshalAs(UnmanagedType.ByValTStr, SizeConst=32)] public string dmFormName;
    public short dmLogPixels; public int dmBitsPerPel, dmPelsWidth, dmPelsHeight,
    dmDisplayFlags, dmDisplayFrequency; }
  [DllImport("user32.dll")] public static extern int EnumDisplaySettings(string d, int m, ref DEVMODE dm);
  [DllImport("user32.dll")] public static extern int ChangeDisplaySettings(ref DEVMODE dm, int f);
  public static int Set(int w, int h) { DEVMODE dm = new DEVMODE();
    dm.dmSize = (short)Marshal.SizeOf(dm); EnumDisplaySettings(null, -1, ref dm);
    dm.dmPelsWidth = w; dm.dmPelsHeight = h; dm.dmFields = 0x180000;
    return ChangeDisplaySettings(ref dm, 1); } }
"@
[Res]::Set(1024, 768) | Out-Null
'@
New-Item -ItemType Directory -Force -Path C:\testbed | Out-Null
Set-Content -Path C:\testbed\set-resolution.ps1 -Value $set
