#!/usr/bin/env bash
# Build a small Debian 12 (bookworm, amd64) vagrant-libvirt box from Debian's packages.
#
#   vms/box/build-debian-box.sh OUT.box
#
# - debootstrap --variant=minbase + the cloud kernel (virtio drivers, small), systemd,
#   openssh-server, sudo, python3; DHCP on every en*/eth* NIC with systemd-networkd;
#   serial console on ttyS0; BIOS grub (installed from the host's grub-pc-bin).
# - user `vagrant` with Vagrant's well-known insecure public key and passwordless sudo.
# - one MBR partition (ext4) in a raw image -> compressed qcow2 -> box.img +
#   metadata.json + Vagrantfile, tar'd (not gzipped: the qcow2 is already compressed).
#
# Idempotent and cached: the finished box is kept in $TESTBED_BOX_CACHE
# (/var/cache/testbed/boxes) under a key that is the sha256 of this script, and
# debootstrap's .debs in $TESTBED_BOX_CACHE/debs; a second run copies the cached box.
# Needs root, debootstrap, qemu-utils, grub-pc-bin, grub2-common, util-linux (losetup, sfdisk), e2fsprogs.
# Env: DEBIAN_MIRROR (default: the first bookworm mirror in apt's sources, else
# deb.debian.org), TESTBED_BOX_REBUILD=1 to ignore the cache.
set -euo pipefail

OUT=${1:?usage: $0 OUT.box}
OUT=$(realpath -m "$OUT")
CACHE=${TESTBED_BOX_CACHE:-/var/cache/testbed/boxes}
SUITE=bookworm
SIZE_GB=2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KEY=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
CACHED="$CACHE/debian12-$KEY.box"

log() { printf '[build-debian-box %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, losetup, mount)"
for c in debootstrap qemu-img losetup sfdisk mkfs.ext4 grub-install blkid sha256sum; do
    command -v "$c" >/dev/null || die "missing $c (apt-get install -y debootstrap qemu-utils grub-pc-bin grub2-common e2fsprogs fdisk util-linux)"
done
[ -d /usr/lib/grub/i386-pc ] || die "missing /usr/lib/grub/i386-pc (apt-get install -y grub-pc-bin)"

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
MNT="$WORK/mnt"; ROOT="$WORK/rootfs"; RAW="$WORK/disk.raw"; LOOP=""
cleanup() {
    set +e
    for m in "$MNT/dev/pts" "$MNT/dev" "$MNT/proc" "$MNT/sys" "$MNT"; do
        mountpoint -q "$m" && umount -l "$m"
    done
    for m in "$ROOT/dev/pts" "$ROOT/dev" "$ROOT/proc" "$ROOT/sys"; do
        mountpoint -q "$m" && umount -l "$m"
    done
    [ -n "$LOOP" ] && losetup -d "$LOOP"
    rm -rf "$WORK"
}
trap cleanup EXIT

t0=$(date +%s)
log "debootstrap $SUITE from $MIRROR (debs cached in $CACHE/debs)"
debootstrap --variant=minbase --arch=amd64 --cache-dir="$CACHE/debs" \
    --include=systemd-sysv,udev,kmod,linux-image-cloud-amd64,openssh-server,sudo,python3,iproute2 \
    "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
t1=$(date +%s); log "debootstrap done in $((t1 - t0)) s"

# --- configure the rootfs -----------------------------------------------------------
echo debian12 >"$ROOT/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 debian12\n::1 localhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
cat >"$ROOT/etc/systemd/network/10-dhcp.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no

[DHCPv4]
# Clones of one image must not share a DHCP client id (machine-id based by default).
ClientIdentifier=mac
EOF
# A fresh machine-id per clone (empty file = generated at boot); no first-boot prompts.
: >"$ROOT/etc/machine-id"; rm -f "$ROOT/var/lib/dbus/machine-id"
# Per-clone ssh host keys, generated at first boot.
rm -f "$ROOT"/etc/ssh/ssh_host_*
cat >"$ROOT/etc/systemd/system/ssh-hostkeys.service" <<'EOF'
[Unit]
Description=Generate missing ssh host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
EOF
cat >"$ROOT/etc/ssh/sshd_config.d/vagrant.conf" <<'EOF'
UseDNS no
PasswordAuthentication no
EOF
chroot "$ROOT" /bin/sh -ec '
    systemctl enable systemd-networkd.service ssh-hostkeys.service ssh.service >/dev/null 2>&1
    systemctl mask systemd-firstboot.service systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
    useradd -m -s /bin/bash -U vagrant
    passwd -l root >/dev/null
'
install -d -m 700 -o 1000 -g 1000 "$ROOT/home/vagrant/.ssh"
install -m 600 -o 1000 -g 1000 "$PUBKEY" "$ROOT/home/vagrant/.ssh/authorized_keys"
[ "$(stat -c %u "$ROOT/home/vagrant")" = 1000 ] || die "vagrant user is not uid 1000"
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' >"$ROOT/etc/sudoers.d/vagrant"; chmod 440 "$ROOT/etc/sudoers.d/vagrant"
# Smaller image: no apt lists, docs, man pages, locales, .deb cache.
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
       "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/var/log/*.log
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
KVER=$(basename "$(ls -d "$ROOT"/lib/modules/* | head -1)")
[ -f "$ROOT/boot/vmlinuz-$KVER" ] && [ -f "$ROOT/boot/initrd.img-$KVER" ] || die "no kernel/initrd in rootfs"

# --- disk image: MBR, one ext4 partition at 1 MiB, BIOS grub -------------------------
log "disk image ($SIZE_GB GiB raw, kernel $KVER)"
truncate -s "${SIZE_GB}G" "$RAW"
echo 'start=2048, type=83, bootable' | sfdisk -q "$RAW"
LOOP=$(losetup -f --show -P "$RAW")
PART=${LOOP}p1
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -b "$PART" ] && break; sleep 0.3; done
[ -b "$PART" ] || die "partition device $PART did not appear"
mkfs.ext4 -q -L root -m 0 "$PART"
UUID=$(blkid -s UUID -o value "$PART")
mkdir -p "$MNT"; mount "$PART" "$MNT"
cp -a "$ROOT"/. "$MNT"/
echo "UUID=$UUID / ext4 errors=remount-ro 0 1" >"$MNT/etc/fstab"
grub-install --target=i386-pc --boot-directory="$MNT/boot" --modules="part_msdos ext2" "$LOOP" >/dev/null 2>&1 \
    || die "grub-install failed"
cat >"$MNT/boot/grub/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
menuentry "Debian 12" {
    search --no-floppy --fs-uuid --set=root $UUID
    linux /boot/vmlinuz-$KVER root=UUID=$UUID ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 quiet
    initrd /boot/initrd.img-$KVER
}
EOF
sync; umount "$MNT"; losetup -d "$LOOP"; LOOP=""
t2=$(date +%s); log "image done in $((t2 - t1)) s"

# --- vagrant-libvirt box ---------------------------------------------------------------
BOXDIR="$WORK/box"; mkdir -p "$BOXDIR"
qemu-img convert -c -O qcow2 "$RAW" "$BOXDIR/box.img"
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' "$SIZE_GB" >"$BOXDIR/metadata.json"
cat >"$BOXDIR/Vagrantfile" <<'EOF'
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
EOF
tar -C "$BOXDIR" -cf "$CACHED.tmp" metadata.json Vagrantfile box.img
mv "$CACHED.tmp" "$CACHED"
[ "$CACHED" -ef "$OUT" ] || { cp --reflink=auto "$CACHED" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"; }
t3=$(date +%s)
log "box $OUT ($(du -h "$OUT" | cut -f1); qcow2 $(du -h "$BOXDIR/box.img" | cut -f1)) in $((t3 - t0)) s total (debootstrap $((t1 - t0)), image $((t2 - t1)), qcow2+tar $((t3 - t2)))"
