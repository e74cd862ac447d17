# Compiler and linker flags shared by every guest build script (sourced).
# 64-bit, freestanding, no SSE and no red zone: this KVM emulates every
# guest instruction and cannot run SSE/xsave; see guests/README.md.
GUEST_CFLAGS=(
    -std=gnu11 -m64 -O2 -g0
    -ffreestanding -nostdlib -fno-builtin -fno-pic -no-pie -static
    -fno-stack-protector -fno-asynchronous-unwind-tables -fno-unwind-tables
    -fno-tree-loop-distribute-patterns -fcf-protection=none
    -mgeneral-regs-only -mno-red-zone -mcmodel=small
    -Wall -Wextra -Werror -Wno-unused-parameter
)
GUEST_LDFLAGS=(
    -Wl,--build-id=none -Wl,-z,max-page-size=0x1000 -Wl,-z,noexecstack
    -Wl,--no-warn-rwx-segments
)
