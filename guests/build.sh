#!/usr/bin/env bash
# Build every denovmm test guest into guests/build/<name>.elf, then run the
# forbidden-instruction check. Usable from any working directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

CC=${CC:-gcc}
# shellcheck source=lib/flags.sh
source lib/flags.sh
CFLAGS=("${GUEST_CFLAGS[@]}")
LDFLAGS=(-T lib/linker.ld "${GUEST_LDFLAGS[@]}")
GUESTS=(hello ports spin selfipi exits timer lapic_timer ioapic virtio timer_garbage level_irq virtio_bench pic testdev pc_timers highmem serial_echo msi_exits snapshot cpuid x2apic forbidden triple_fault hpet level_sti hpet_ticks smp ioapic_smp smp_bench msix_smp level_smp)

mkdir -p build
# Incremental: a guest is rebuilt when its ELF is missing or older than its
# source, the runtime (lib/), the flags or this script. FORCE=1 rebuilds all.
stale() { # stale OUT SRC...
    [ "${FORCE:-0}" = 1 ] || [ ! -e "$1" ] && return 0
    local out=$1; shift
    for s in "$@" lib/* build.sh; do [ "$s" -nt "$out" ] && return 0; done
    return 1
}
built=()
for g in "${GUESTS[@]}"; do
    case "$g" in
        virtio*) extra=(lib/virtio_drv.c) ;;    # PCI + virtio-pci driver helpers
        msix_smp) extra=(lib/smp_boot.c lib/virtio_drv.c) ;;
        timer|hpet_ticks) extra=(lib/ticks.c) ;; # the shared tick recorder
        smp|ioapic_smp|smp_bench|pic|level_smp) extra=(lib/smp_boot.c) ;; # AP start-up (INIT/SIPI trampoline)
        *) extra=() ;;
    esac
    stale "build/$g.elf" "$g.c" || continue
    echo "  CC+LD  build/$g.elf"
    "$CC" "${CFLAGS[@]}" "${LDFLAGS[@]}" -o "build/$g.elf" \
        lib/entry.S lib/rt.c "${extra[@]}" "$g.c"  || { echo "build.sh: FAILED building $g" >&2; exit 1; }
    built+=("build/$g.elf")
done

if stale build/multiboot_low.bin multiboot/*; then
    bash multiboot/build.sh   # multiboot_elf32.elf, multiboot_aout.bin, multiboot_low.bin
fi
if [ "${#built[@]}" -gt 0 ]; then bash ./check_insns.sh "${built[@]}"; fi
echo "build.sh: OK (${#GUESTS[@]} guests in $(pwd)/build, ${#built[@]} rebuilt)"
