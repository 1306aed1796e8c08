#!/usr/bin/env bash
# vm.sh — runs a command on a second, older kernel: Debian 12's stock kernel (6.1: XFS and ext4 quota
# support, no fsconfig "lowerdir+") booted in QEMU (TCG: nested KVM hangs on the CI machines).
# The guest's root file system is this machine's own / over virtio-9p, so it sees the same files, the
# same node and the same checkout; /tmp in the guest is a fresh ext4 disk (a sparse image here), so the
# tests run on a real block-device file system. The command runs as root in the current directory; its
# output streams back on stdout and its exit status is this script's.
#
#   usage: .ci/vm.sh [-m MiB] [-t SECONDS] -- COMMAND...
#
# First run installs qemu-system-x86, linux-image-amd64 and busybox-static with apt and builds a small
# initrd under $VM_DIR (default /var/tmp/overlay2-vm). Each run gets its own scratch disk and status
# file, so runs from several checkouts do not share state.
set -euo pipefail
MEM=3072; TIMEOUT=2400
while [ $# -gt 0 ]; do case "$1" in
  -m) MEM=$2; shift 2;; -t) TIMEOUT=$2; shift 2;; --) shift; break;; *) break;; esac; done
[ $# -gt 0 ] || { echo "usage: vm.sh [-m MiB] [-t SECONDS] -- COMMAND..." >&2; exit 2; }
VM_DIR=${VM_DIR:-/var/tmp/overlay2-vm}
mkdir -p "$VM_DIR"

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
{ [ -x /bin/busybox ] && command -v file >/dev/null && file -L /bin/busybox | grep -q static; } || need+=(busybox-static file)
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
for tool in mkfs.xfs:xfsprogs cpio:cpio zstd:zstd; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
KVER=$(ls /boot/vmlinuz-* | sed 's#.*/vmlinuz-##' | sort -V | tail -1)
KMOD=/lib/modules/$KVER/kernel

# initrd: busybox + the modules needed to mount the host's / over virtio-9p, then chroot into it.
INITRD="$VM_DIR/initrd-$KVER.gz"
if [ ! -f "$INITRD" ]; then
  R=$(mktemp -d "$VM_DIR/initrd.XXXXXX")
  mkdir -p "$R"/{bin,lib/modules,proc,sys,dev,mnt}
  cp /bin/busybox "$R/bin/"
  MODS="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p"
  for m in $MODS; do
    f=$(find "$KMOD" -name "$m.ko*" | head -1); [ -n "$f" ] || { echo "vm.sh: module $m not found" >&2; exit 1; }
    case "$f" in *.xz) xz -dc "$f" > "$R/lib/modules/$m.ko";; *.zst) zstd -qdc "$f" > "$R/lib/modules/$m.ko";; *) cp "$f" "$R/lib/modules/$m.ko";; esac
  done
  cat > "$R/init" <<INIT
#!/bin/busybox sh
B=/bin/busybox
\$B mount -t proc proc /proc; \$B mount -t sysfs sys /sys; \$B mount -t devtmpfs dev /dev
for m in $MODS; do \$B insmod /lib/modules/\$m.ko 2>/dev/null; done
\$B mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose host /mnt || echo "VM: 9p mount failed"
\$B mount -t proc proc /mnt/proc; \$B mount -t sysfs sys /mnt/sys; \$B mount -t devtmpfs dev /mnt/dev
\$B mount -t tmpfs -o mode=1777 tmpfs /mnt/run
script=\$(\$B sed -n 's/.*vmscript=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
\$B chroot /mnt /bin/bash "\$script"
\$B sync; \$B poweroff -f
INIT
  chmod +x "$R/init"
  (cd "$R" && find . | cpio -o -H newc 2>/dev/null | gzip) > "$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  rm -rf "$R"
fi

# This run's own scratch disk, guest script and status file.
RUN=$(mktemp -d "$VM_DIR/run.XXXXXX")
trap 'rm -rf "$RUN"' EXIT
truncate -s 16G "$RUN/scratch.img"
{
  echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root'
  echo 'for m in virtio_blk loop overlay xfs ext4 quota_v2; do modprobe $m 2>/dev/null; done'
  # A checkout under /tmp stays reachable: the host's /tmp is kept at /run/host-tmp before the
  # scratch disk covers /tmp.
  echo 'mkdir -p /run/host-tmp && mount --bind /tmp /run/host-tmp'
  echo 'mkfs.ext4 -q -F -E lazy_itable_init=0 /dev/vda && mount /dev/vda /tmp && chmod 1777 /tmp'
  echo "echo \"VM: kernel \$(uname -r), /tmp on \$(findmnt -no FSTYPE /tmp)\""
  case "$PWD" in
    /tmp) dir=/run/host-tmp;;
    /tmp/*) dir="/run/host-tmp/${PWD#/tmp/}";;
    *) dir=$PWD;;
  esac
  printf 'cd %q && ' "$dir"; printf '%q ' "$@"; echo
  echo "echo \$? > $RUN/status"
} > "$RUN/guest-script"

set +e
# The kernel's console noise before the guest script starts is dropped; sed -u keeps it streaming.
timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -m "$MEM" -smp 2 -nographic -no-reboot \
  -kernel "/boot/vmlinuz-$KVER" -initrd "$INITRD" \
  -append "console=ttyS0 quiet loglevel=1 panic=-1 vmscript=$RUN/guest-script" \
  -drive "file=$RUN/scratch.img,if=virtio,format=raw,cache=unsafe" \
  -virtfs local,path=/,mount_tag=host,security_model=passthrough,id=host,multidevs=remap \
  2>&1 | sed -u -e 's/\r$//' -e 's/^.*\(VM: kernel\)/\1/' | sed -u -e '1,/^VM: kernel/{/^VM: kernel/!d}' -e '/multidevs/d' -e '/reboot: Power down/d'
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 124 ] && { echo "vm.sh: timed out after $TIMEOUT s" >&2; exit 124; }
[ -f "$RUN/status" ] || { echo "vm.sh: the guest did not report an exit status (qemu exit $rc)" >&2; exit 1; }
exit "$(cat "$RUN/status")"
