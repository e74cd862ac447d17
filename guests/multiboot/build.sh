#!/usr/bin/env bash
# Build the multiboot v1 test kernel in two flavours:
#   guests/build/multiboot_elf32.elf  ELF32 i386 ET_EXEC at 0x100000
#                                     (header flags 0x3: loaded by program headers)
#   guests/build/multiboot_aout.bin   flat binary, a.out kludge (flags 0x10003)
#   guests/build/multiboot_low.bin    the same, loaded at 0x8000 (conventional
#                                     memory, below the boot information area)
# Both link entry32.S + lib/rt.c + multiboot.c as a 64-bit ELF first
# (guests/build/multiboot/*.elf64), then convert. Usable from any directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

CC=${CC:-gcc}
OBJCOPY=${OBJCOPY:-objcopy}
# shellcheck source=../lib/flags.sh
source ../lib/flags.sh
CFLAGS=("${GUEST_CFLAGS[@]}")
LDFLAGS=(-T multiboot.ld "${GUEST_LDFLAGS[@]}")
OUT=../build
TMP=$OUT/multiboot
mkdir -p "$TMP"

# lib/entry.S provides the 64-bit interrupt stubs rt.c's idt_init refers to
# (its _start is unused; the entry point is mb_start32).
for flavour in elf aout low; do
    defs=()
    case "$flavour" in
        aout) defs=(-DMB_AOUT) ;;
        low) defs=(-DMB_AOUT -Wl,--defsym=MB_BASE=0x8000) ;;
    esac
    echo "  CC+LD  build/multiboot/$flavour.elf64"
    "$CC" "${CFLAGS[@]}" "${defs[@]}" "${LDFLAGS[@]}" -o "$TMP/$flavour.elf64" \
        entry32.S ../lib/entry.S ../lib/rt.c multiboot.c \
        || { echo "multiboot/build.sh: FAILED building $flavour" >&2; exit 1; }
done

# ELF32: same bytes, i386 headers. The 64-bit sections are marked as data so
# that objdump -d (check_insns.sh on build/*.elf) decodes only the 32-bit
# entry (.boot32), in the right mode; the 64-bit code is checked below on
# the ELF64. Program headers (what loaders use) are unchanged.
echo "  OBJCOPY build/multiboot_elf32.elf"
"$OBJCOPY" -O elf32-i386 \
    --set-section-flags .text=alloc,load,readonly,data,contents \
    "$TMP/elf.elf64" "$OUT/multiboot_elf32.elf"

# Flat a.out-kludge image: file offset 0 = load_addr 0x100000 .. _edata.
echo "  OBJCOPY build/multiboot_aout.bin"
for flavour in aout low; do
    "$OBJCOPY" -O binary -j .multiboot -j .boot32 -j .text -j .rodata -j .data \
        "$TMP/$flavour.elf64" "$OUT/multiboot_$flavour.bin"
    # Sanity: the flat binary is exactly load_addr.._edata.
    sym() { echo $(( 16#$(nm "$TMP/$flavour.elf64" | awk -v s="$1" '$3 == s { print $1 }') )); }
    want=$(( $(sym _edata) - $(sym __image_start) ))
    got=$(stat -c %s "$OUT/multiboot_$flavour.bin")
    [ "$want" -eq "$got" ] || { echo "multiboot/build.sh: $flavour flat binary is $got bytes, want $want" >&2; exit 1; }
done

# The cold-start bench kernel (bench/run_start_bench.ts): 32-bit only, no
# runtime; an ELF32 that denovmm, QEMU's -kernel and bench/c_start.c all boot.
echo "  AS+LD  build/multiboot_tiny.elf"
"$CC" -m32 -c -o "$TMP/tiny.o" tiny.S
ld -m elf_i386 -N -e _start -Ttext=0x100000 --no-warn-rwx-segments \
    -o "$OUT/multiboot_tiny.elf" "$TMP/tiny.o"

# Forbidden instructions: 64-bit code on a copy of the ELF64 whose 32-bit
# section is marked as data; the 32-bit entry decoded as i386 (no int n, no
# 16/32-bit iret) through the ELF32.
for flavour in elf aout low; do
    "$OBJCOPY" --set-section-flags .boot32=alloc,load,readonly,data,contents \
        "$TMP/$flavour.elf64" "$TMP/$flavour.check64.elf"
done
# (check_insns.sh changes to guests/: pass paths relative to it.)
bash ../check_insns.sh build/multiboot/elf.check64.elf build/multiboot/aout.check64.elf \
    build/multiboot/low.check64.elf build/multiboot_elf32.elf build/multiboot_tiny.elf
echo "multiboot/build.sh: OK"
