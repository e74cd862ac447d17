/**
 * The VM's zero-copy views of core memory (guest RAM, the exit record) and
 * their lifetime: detached at `close()` so a kept view throws instead of
 * touching freed memory, and kept alive by any reachable view when the VM
 * object itself is collected (the VM is released, and warned about once,
 * only when every view is gone).
 *
 * @module
 */
import { AbiConst } from "../ffi/abi.ts";
import type { CoreVm } from "../ffi/core_vm.ts";
import { ExitRecordView } from "../ffi/exit_record.ts";
import { RamView } from "./guest_memory.ts";

/** What the finalizer needs to release a VM nobody closed. */
interface Holder {
  core: CoreVm;
  /** Buffers (RAM, exit record) still reachable. */
  remaining: number;
  /** Where the VM was created. */
  created: string;
}

let leakWarned = false;
const finalizer = new FinalizationRegistry<Holder>((h) => {
  if (--h.remaining > 0) return;
  if (!leakWarned) {
    leakWarned = true;
    console.error(
      `[denovmm vm] warn: a VM was garbage-collected without close(); ` +
        `close it (or use \`using\`) to release its fds and memory at once. ` +
        `It was created:\n${h.created}`,
    );
  }
  try {
    h.core.destroy();
  } catch {
    // already gone
  }
});

/**
 * A VM's views of its core memory. `detach()` (at close) unregisters the
 * finalizer and detaches every view; the caller then destroys the core VM.
 */
export class CoreViews {
  /** vCPU 0's exit record. */
  readonly record: ExitRecordView;
  /** Every vCPU's exit record, by vCPU index (`records[0] === record`). */
  readonly records: readonly ExitRecordView[];
  /** Guest RAM, split around the MMIO hole as the core maps it. */
  readonly ram: RamView;
  readonly #buffers: ArrayBuffer[];
  readonly #holder: Holder;

  /**
   * Map the views of `core` (with `vcpus` exit records); `created` says
   * where the VM was made.
   */
  constructor(core: CoreVm, created: string, vcpus = 1) {
    const recBufs: ArrayBuffer[] = [];
    for (let i = 0; i < vcpus; i++) recBufs.push(core.recordBuffer(i));
    const ramBuf = core.memoryBuffer();
    const mem = { size: ramBuf.byteLength };
    this.#buffers = [...recBufs, ramBuf];
    this.records = recBufs.map((b) => new ExitRecordView(b));
    this.record = this.records[0];
    this.ram = new RamView(new Uint8Array(ramBuf), {
      lowSize: Math.min(mem.size, AbiConst.DV_RAM_HOLE_START),
      highBase: AbiConst.DV_RAM_HIGH_BASE,
    });
    this.#holder = { core, remaining: this.#buffers.length, created };
    for (const b of this.#buffers) {
      finalizer.register(b, this.#holder, this.#holder);
    }
  }

  /** Detach every view (they throw from now on); no finalizer runs. */
  detach(): void {
    finalizer.unregister(this.#holder);
    // by the backend, in place: on Node 20 (no ArrayBuffer.transfer) a
    // transferring structuredClone copied all of guest RAM per close and
    // left the external buffer attached
    for (const b of this.#buffers) this.#holder.core.detachBuffer(b);
  }
}
