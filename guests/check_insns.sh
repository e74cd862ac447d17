#!/usr/bin/env bash
# Fail if any guest ELF contains an instruction the host's KVM emulator cannot
# execute: int/int3/into, 16/32-bit iret (iretq is fine), vmcall, cmpxchg16b,
# xsave*/xrstor*/xgetbv, fxsave/fxrstor, ldmxcsr/stmxcsr, or any
# xmm/ymm/zmm register use. Usage: check_insns.sh [elf...]
# (default: guests/build/*.elf)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ "$#" -eq 0 ]; then set -- build/*.elf; fi

bad_mnem='^(int|int1|int3|into|icebp|iret|iretw|iretl|iretd|vmcall|vmmcall|cmpxchg16b|xsave[a-z0-9]*|xrstor[a-z0-9]*|xgetbv|xsetbv|fxsave[a-z0-9]*|fxrstor[a-z0-9]*|ldmxcsr|stmxcsr|vldmxcsr|vstmxcsr)$'
status=0
for f in "$@"; do
    [ -f "$f" ] || { echo "check_insns: missing $f" >&2; status=1; continue; }
    # objdump line: "  100000:\tmnemonic operands"; prefixes (rep, lock,
    # data16, ...) appear as extra words, so every word is examined.
    hits=$(objdump -d --no-show-raw-insn -M att "$f" | awk -F'\t' -v re="$bad_mnem" '
        NF >= 2 && $1 ~ /^ *[0-9a-f]+:$/ {
            insn = $2
            sub(/#.*/, "", insn)
            n = split(insn, w, /[ ,]+/)
            bad = 0
            for (i = 1; i <= n; i++) if (w[i] ~ re) bad = 1
            if (insn ~ /%[xyz]mm[0-9]/) bad = 1
            if (insn ~ /\(bad\)/) bad = 1
            if (bad) print $1 "\t" $2
        }')
    if [ -n "$hits" ]; then
        echo "check_insns: FORBIDDEN instructions in $f:" >&2
        echo "$hits" >&2
        status=1
    fi
done
if [ "$status" -eq 0 ]; then
    echo "check_insns: OK ($# files)"
fi
exit "$status"
