#!/bin/bash
# Time `cryptsetup open` for a key slot with the minimal PBKDF lvmvol uses
# for keys it generates (pbkdf2, 1000 iterations) against cryptsetup's
# default (argon2id, benchmarked to about 2 s of work on the machine that
# formats). Runs inside the throwaway VM: tests/vm/run-vm benchmarks/kdf.sh
set -euo pipefail

scratch=${LVMVOL_VM_SCRATCH:?run this through tests/vm/run-vm}
rounds=${ROUNDS:-5}
image=$scratch/kdf.img
truncate -s 64M "$image"
device=$(losetup --find --show "$image")
key=$scratch/kdf.key
head -c 64 /dev/urandom > "$key"
chmod 600 "$key"
trap 'cryptsetup close kdf-bench 2>/dev/null || true; losetup -d "$device"; rm -f "$image" "$key"' EXIT

measure() {
    local label=$1
    shift
    cryptsetup luksFormat --type luks2 --batch-mode --key-file "$key" "$@" "$device"
    local times=()
    for _ in $(seq "$rounds"); do
        local start end
        start=$(date +%s.%N)
        cryptsetup open --key-file "$key" "$device" kdf-bench
        end=$(date +%s.%N)
        cryptsetup close kdf-bench
        times+=("$(awk -v start="$start" -v end="$end" 'BEGIN { printf "%.6f", end - start }')")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk -v label="$label" -v n="$rounds" \
        '{ t[NR] = $1 } END { printf "%-32s median %.3f s over %d opens\n", label, t[int((n + 1) / 2)], n }'
}

echo "cryptsetup $(cryptsetup --version | cut -d' ' -f2), kernel $(uname -r), $(nproc) CPUs"
measure "argon2id (cryptsetup default)"
measure "pbkdf2, 1000 iterations" --pbkdf pbkdf2 --pbkdf-force-iterations 1000
