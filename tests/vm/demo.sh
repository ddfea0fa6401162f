#!/bin/bash
# The main job end to end, inside the throwaway VM (make demo): a loop-backed
# pool, a volume with data, a snapshot that keeps the old data while the
# origin changes, an encrypted volume with its key file on a RAM disk and
# a snapshot of it, then the listing and the tree.
set -euo pipefail

scratch=${LVMVOL_VM_SCRATCH:?run this through tests/vm/run-vm (make demo)}
config=$scratch/demo.toml
cat > "$config" <<EOF
mount_root = "$scratch/mnt"
EOF
export LVMVOL_CONFIG=$config

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step lvmvol pool init --file "$scratch/demo-pool.img" --file-size 1G --vg demo
step lvmvol volume create app-data --size 200M
mountpoint=$(lvmvol volume mount app-data)
echo "mounted at $mountpoint"
echo "version 1" > "$mountpoint/release.txt"

step lvmvol snapshot app-data app-data-backup
echo "version 2" > "$mountpoint/release.txt"
backup=$(lvmvol volume mount app-data-backup "$scratch/mnt/backup")

printf '\norigin now:  %s\n' "$(cat "$mountpoint/release.txt")"
printf 'snapshot:    %s\n' "$(cat "$backup/release.txt")"
[ "$(cat "$backup/release.txt")" = "version 1" ] || { echo "demo: the snapshot lost its data" >&2; exit 1; }

# Encryption at rest with a key file kept on a RAM disk.
keys=$scratch/ramdisk
mkdir -p "$keys"
mount -t tmpfs -o size=1M,mode=0700 tmpfs "$keys"
head -c 64 /dev/urandom > "$keys/secrets.key"
chmod 600 "$keys/secrets.key"
step lvmvol volume create secrets --size 100M --luks --key-file "$keys/secrets.key"
secrets=$(lvmvol volume mount secrets)
echo "mounted at $secrets"
echo "api-token v1" > "$secrets/token"
step lvmvol snapshot secrets secrets-backup
echo "api-token v2" > "$secrets/token"
secrets_backup=$(lvmvol volume mount secrets-backup "$scratch/mnt/secrets-backup")
printf '\nencrypted origin now:  %s\n' "$(cat "$secrets/token")"
printf 'encrypted snapshot:    %s\n' "$(cat "$secrets_backup/token")"
[ "$(cat "$secrets_backup/token")" = "api-token v1" ] || { echo "demo: the encrypted snapshot lost its data" >&2; exit 1; }

step lvmvol volume ls
step lvmvol pool ls
step lvmvol tree

step lvmvol volume umount secrets-backup
step lvmvol volume umount secrets
step lvmvol volume umount app-data-backup
step lvmvol volume umount app-data
step lvmvol volume rm secrets-backup secrets app-data-backup app-data
umount "$keys"
vgremove -ff demo >/dev/null
losetup -j "$scratch/demo-pool.img" | cut -d: -f1 | xargs -r losetup -d
rm -f "$scratch/demo-pool.img"
echo
echo "demo finished"
