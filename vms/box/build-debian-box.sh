#!/usr/bin/env bash
# Build a small Debian 12 (bookworm, amd64) vagrant-libvirt box from Debian's packages.
#
#   vms/box/build-debian-box.sh OUT.box
#
# - debootstrap --variant=minbase + the cloud kernel (virtio drivers, small), systemd,
#   openssh-server, sudo, python3 with python3-pil (the agent), ca-certificates; DHCP on
#   eth0 (vagrant's management NIC) only, with systemd-networkd;
#   serial console on ttyS0; BIOS grub (from the host's grub-pc-bin).
# - a desktop session, as on a Windows guest: getty logs `vagrant` on at tty1 automatically;
#   its login shell starts X (xinit + Xvfb, 1024x768x24 — the lab's screen, at which the
#   reference images were taken; no scaling: GDK_SCALE=1, QT_SCALE_FACTOR=1), a session
#   D-Bus and openbox (a light window manager), whose autostart starts the agent's launcher
#   (/usr/local/bin/testbed-session-agent). The launcher waits for the per-run agent
#   environment (~/.config/testbed/agent.env, written by provision/linux/run-setup.sh) and
#   runs the agent in this session. Fonts: DejaVu and WenQuanYi Micro Hei (CJK) — the lab's;
#   clipboard: xclip; the reference client's GUI: python3-tk; images: python3-numpy.
# - user `vagrant` with Vagrant's well-known insecure public key and passwordless sudo;
#   per-clone machine-id and ssh host keys (made at first boot).
# - one MBR partition (ext4) in a raw image -> compressed qcow2 -> box.img +
#   metadata.json + Vagrantfile, tar'd (not gzipped: the qcow2 is already compressed).
#
# No loop devices and no mounts (this CI machine's kernel has no MBR partition support,
# so `losetup -P` shows no partitions): mke2fs -d fills the filesystem from the rootfs
# directory, grub-mkimage makes core.img with its prefix built in, and boot.img (MBR
# code) + core.img (sectors 1..) are written with dd, as grub-bios-setup would.
#
# Idempotent and cached: the finished box is kept in $TESTBED_BOX_CACHE
# (/var/cache/testbed/boxes) under a key that is the sha256 of this script, and
# debootstrap's .debs in $TESTBED_BOX_CACHE/debs; a second run only copies the box.
# Needs root (debootstrap, chroot), debootstrap, qemu-utils, grub-pc-bin, fdisk (sfdisk),
# e2fsprogs >= 1.43 (mke2fs -d), and vagrant (for its insecure public key) or
# VAGRANT_INSECURE_PUBKEY=path.
# Env: DEBIAN_MIRROR (default: the first Debian mirror in apt's sources, else
# deb.debian.org), TESTBED_BOX_REBUILD=1 to ignore the cached box.
set -euo pipefail

OUT=${1:?usage: $0 OUT.box}
OUT=$(realpath -m "$OUT")
CACHE=${TESTBED_BOX_CACHE:-/var/cache/testbed/boxes}
SUITE=bookworm
SIZE_GB=3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KEY=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
CACHED="$CACHE/debian12-$KEY.box"

log() { printf '[build-debian-box %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot)"
for c in debootstrap qemu-img sfdisk mkfs.ext4 grub-mkimage sha256sum; do
    command -v "$c" >/dev/null || die "missing $c (apt-get install -y debootstrap qemu-utils grub-pc-bin e2fsprogs fdisk)"
done
[ -f /usr/lib/grub/i386-pc/boot.img ] || die "missing /usr/lib/grub/i386-pc (apt-get install -y grub-pc-bin)"

mkdir -p "$CACHE/debs" "$(dirname "$OUT")"
if [ -s "$CACHED" ] && [ "${TESTBED_BOX_REBUILD:-0}" != 1 ]; then
    log "cached box $CACHED"
    [ "$CACHED" -ef "$OUT" ] || { cp --reflink=auto "$CACHED" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"; }
    exit 0
fi

# Vagrant's insecure public key: public, shipped with vagrant itself.
PUBKEY=${VAGRANT_INSECURE_PUBKEY:-}
if [ -z "$PUBKEY" ]; then
    for f in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub \
             /usr/share/vagrant/keys/vagrant.pub /opt/vagrant/embedded/gems/*/gems/vagrant-*/keys/vagrant.pub \
             "$HERE/vagrant.pub"; do
        [ -s "$f" ] && { PUBKEY=$f; break; }
    done
fi
[ -n "$PUBKEY" ] && [ -s "$PUBKEY" ] || die "vagrant's insecure public key not found (install vagrant or set VAGRANT_INSECURE_PUBKEY)"

MIRROR=${DEBIAN_MIRROR:-$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
          | grep -v security | head -1 | awk '{print $2}' || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

WORK=$(mktemp -d /var/tmp/testbed-box.XXXXXX)
ROOT="$WORK/rootfs"; RAW="$WORK/disk.raw"
cleanup() {
    set +e
    for m in "$ROOT/dev/pts" "$ROOT/dev" "$ROOT/proc" "$ROOT/sys"; do
        mountpoint -q "$m" && umount -l "$m"
    done
    rm -rf "$WORK" "$OUT.tmp" "$CACHED.tmp"
}
trap cleanup EXIT

# The desktop session (see the head of this file) and what the agent and the reference
# client need in it.
DESKTOP=xvfb,xinit,xauth,openbox,x11-xserver-utils,dbus,dbus-bin,python3-tk,python3-xlib,python3-numpy,python3-yaml,xclip,fonts-dejavu-core,fonts-wqy-microhei
t0=$(date +%s)
log "debootstrap $SUITE from $MIRROR (debs cached in $CACHE/debs)"
debootstrap --variant=minbase --arch=amd64 --cache-dir="$CACHE/debs" \
    --include=systemd-sysv,udev,kmod,linux-image-cloud-amd64,openssh-server,sudo,python3,python3-pil,ca-certificates,iproute2,$DESKTOP \
    "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
t1=$(date +%s); log "debootstrap done in $((t1 - t0)) s"

# --- configure the rootfs -----------------------------------------------------------
echo debian12 >"$ROOT/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 debian12\n::1 localhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
# DHCP on the first NIC only: vagrant's management NIC. Other NICs (the experiment network)
# stay silent until testbed configures them.
cat >"$ROOT/etc/systemd/network/10-dhcp.network" <<'UNIT'
[Match]
Name=eth0

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no

[DHCPv4]
# Clones of one image must not share a DHCP client id (machine-id based by default).
ClientIdentifier=mac
UNIT
# A fresh machine-id per clone (empty file = generated at boot); no first-boot prompts.
: >"$ROOT/etc/machine-id"; rm -f "$ROOT/var/lib/dbus/machine-id"
# Per-clone ssh host keys, generated at first boot.
rm -f "$ROOT"/etc/ssh/ssh_host_*
cat >"$ROOT/etc/systemd/system/ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate missing ssh host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
printf 'UseDNS no\nPasswordAuthentication no\n' >"$ROOT/etc/ssh/sshd_config.d/vagrant.conf"
chroot "$ROOT" /bin/sh -ec '
    systemctl enable systemd-networkd.service ssh-hostkeys.service ssh.service >/dev/null 2>&1
    systemctl mask systemd-firstboot.service systemd-networkd-wait-online.service \
        apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
    useradd -m -s /bin/bash -U vagrant
    passwd -l root >/dev/null
'
# --- the desktop session --------------------------------------------------------------
install -d "$ROOT/etc/systemd/system/getty@tty1.service.d"
cat >"$ROOT/etc/systemd/system/getty@tty1.service.d/autologin.conf" <<'UNIT'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin vagrant --noclear %I $TERM
UNIT
cat >>"$ROOT/home/vagrant/.profile" <<'PROFILE'

# testbed: the desktop session of the automatically logged-on user (tty1 only)
if [ "$(tty)" = /dev/tty1 ] && [ -z "${DISPLAY:-}" ]; then
    exec xinit "$HOME/.xinitrc" -- /usr/bin/Xvfb :0 -screen 0 1024x768x24 -nolisten tcp \
        -noreset >"$HOME/.xsession-errors" 2>&1
fi
PROFILE
cat >"$ROOT/home/vagrant/.xinitrc" <<'XINITRC'
#!/bin/sh
# testbed: 100 % scale, the session bus, openbox (its autostart starts the agent's launcher)
export GDK_SCALE=1 GDK_DPI_SCALE=1 QT_SCALE_FACTOR=1 XDG_SESSION_TYPE=x11
exec dbus-run-session -- openbox-session
XINITRC
install -d "$ROOT/home/vagrant/.config/openbox"
printf '/usr/local/bin/testbed-session-agent &\n' >"$ROOT/home/vagrant/.config/openbox/autostart"
cat >"$ROOT/usr/local/bin/testbed-session-agent" <<'AGENT'
#!/bin/sh
# testbed: started by the desktop session's autostart (never by ssh or a system service).
# Runs the agent's launcher (testbed.agent.launch, in /opt/testbed once testbed has put its
# code there): it imports the agent, then waits for this run's environment (token, listen
# address), which run-setup.sh writes over ssh after every snapshot restore, removes it and
# serves. Started again whenever it ends (run-setup.sh ends it when the code changes).
ENVFILE="$HOME/.config/testbed/agent.env"
mkdir -p "$HOME/.config/testbed" "$HOME/.cache" "$HOME/agent"
touch "$HOME/.Xauthority"   # (pyautogui wants one; Xvfb here runs without auth)
while :; do
    if [ -f /opt/testbed/testbed/agent/launch.py ]; then
        PYTHONPATH=/opt/testbed:/opt/testbed/vendor PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
            python3 -m testbed.agent.launch "$ENVFILE" --workdir "$HOME/agent" \
            >>"$HOME/.cache/testbed-agent.log" 2>&1
    fi
    sleep 0.2
done
AGENT
chmod 755 "$ROOT/usr/local/bin/testbed-session-agent" "$ROOT/home/vagrant/.xinitrc"
install -d -m 755 "$ROOT/opt/testbed" "$ROOT/opt/testbed/vendor"
chroot "$ROOT" chown -R vagrant:vagrant /home/vagrant
VUID=$(chroot "$ROOT" id -u vagrant); VGID=$(chroot "$ROOT" id -g vagrant)
install -d -m 700 -o "$VUID" -g "$VGID" "$ROOT/home/vagrant/.ssh"
install -m 600 -o "$VUID" -g "$VGID" "$PUBKEY" "$ROOT/home/vagrant/.ssh/authorized_keys"
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' >"$ROOT/etc/sudoers.d/vagrant"; chmod 440 "$ROOT/etc/sudoers.d/vagrant"
# Smaller image: no apt lists, docs, man pages, locales, .deb cache.
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
       "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/var/log/*.log
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
KVER=$(basename "$(ls -d "$ROOT"/lib/modules/* | head -1)")
[ -f "$ROOT/boot/vmlinuz-$KVER" ] && [ -f "$ROOT/boot/initrd.img-$KVER" ] || die "no kernel/initrd in rootfs"

# --- disk image: MBR, one ext4 partition at 1 MiB, BIOS grub -------------------------
log "disk image ($SIZE_GB GiB raw, kernel $KVER)"
UUID=$(cat /proc/sys/kernel/random/uuid)
echo "UUID=$UUID / ext4 errors=remount-ro 0 1" >"$ROOT/etc/fstab"
mkdir -p "$ROOT/boot/grub/i386-pc"
cp /usr/lib/grub/i386-pc/*.mod /usr/lib/grub/i386-pc/*.lst "$ROOT/boot/grub/i386-pc/"
cat >"$ROOT/boot/grub/grub.cfg" <<GRUBCFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
menuentry "Debian 12" {
    search --no-floppy --fs-uuid --set=root $UUID
    linux /boot/vmlinuz-$KVER root=UUID=$UUID ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 quiet
    initrd /boot/initrd.img-$KVER
}
GRUBCFG
FS="$WORK/rootfs.ext4"
truncate -s $((SIZE_GB * 1024 - 1))M "$FS"
mkfs.ext4 -q -F -L root -U "$UUID" -m 0 -d "$ROOT" "$FS"
grub-mkimage -O i386-pc -o "$WORK/core.img" -p '(hd0,msdos1)/boot/grub' \
    biosdisk part_msdos ext2 search search_fs_uuid normal linux serial terminal echo test configfile
[ "$(stat -c %s "$WORK/core.img")" -lt $((2047 * 512)) ] || die "core.img does not fit before the partition"
truncate -s "${SIZE_GB}G" "$RAW"
echo 'start=2048, type=83, bootable' | sfdisk -q "$RAW"
dd if=/usr/lib/grub/i386-pc/boot.img of="$RAW" bs=440 count=1 conv=notrunc status=none
dd if="$WORK/core.img" of="$RAW" bs=512 seek=1 conv=notrunc status=none
dd if="$FS" of="$RAW" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$FS"
t2=$(date +%s); log "image done in $((t2 - t1)) s"

# --- vagrant-libvirt box ---------------------------------------------------------------
BOXDIR="$WORK/box"; mkdir -p "$BOXDIR"
qemu-img convert -c -O qcow2 "$RAW" "$BOXDIR/box.img"
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' "$SIZE_GB" >"$BOXDIR/metadata.json"
cat >"$BOXDIR/Vagrantfile" <<'VF'
# testbed/debian12: minimal Debian 12 built by vms/box/build-debian-box.sh
Vagrant.configure("2") do |config|
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.provider :libvirt do |libvirt|
    libvirt.disk_bus = "virtio"
    libvirt.nic_model_type = "virtio"
    libvirt.graphics_type = "none"
    libvirt.video_type = "none"
  end
end
VF
tar -C "$BOXDIR" -cf "$CACHED.tmp" metadata.json Vagrantfile box.img
mv "$CACHED.tmp" "$CACHED"
[ "$CACHED" -ef "$OUT" ] || { cp --reflink=auto "$CACHED" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"; }
t3=$(date +%s)
log "box $OUT ($(du -h "$OUT" | cut -f1); qcow2 $(du -h "$BOXDIR/box.img" | cut -f1)) in $((t3 - t0)) s total (debootstrap $((t1 - t0)), image $((t2 - t1)), qcow2+tar $((t3 - t2)))"
