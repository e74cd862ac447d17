// Test harness of the napi addon on Node: loads the addon, creates a VM
// and runs the exit loop in JS over the shared exit record (an external
// ArrayBuffer over the core's record: no copy per exit).
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root (napi/test/../..). */
export const ROOT = join(here, "..", "..");
/** Default addon path (what `npm run build` in napi/ writes). */
export const ADDON_PATH = process.env.DENOVMM_NODE ||
  join(here, "..", "denovmm.linux-x64-gnu.node");

/** Exit reasons (DvReason) used here. */
export const Reason = { Io: 1, Hlt: 3, Shutdown: 4, Stopped: 6, Timeout: 7 };
/** Record offsets (mirrors core/src/exit.rs `offsets`). */
export const Off = {
  reason: 0, address: 8, size: 16, count: 20, isWrite: 24, space: 28,
  region: 48, data: 64,
};

/** Why the addon cannot be used here, or null. */
export function missing() {
  if (!existsSync(ADDON_PATH)) {
    return `no addon at ${ADDON_PATH} (cd napi && npm install && npm run build)`;
  }
  if (!existsSync("/dev/kvm")) return "no /dev/kvm";
  return null;
}

/** The addon module. */
export function addon(path = ADDON_PATH) {
  return createRequire(import.meta.url)(path);
}

/** Throw with the core's message when rc < 0. */
export function check(dv, rc, what) {
  if (rc < 0) throw new Error(`${what}: ${dv.dv_last_error_string()} (code ${rc})`);
  return rc;
}

/** A VM loaded with guests/build/<elf>.elf and its four arguments. */
export function createVm(dv, { elf, arg0 = 0, args = [arg0], memSize = 16 << 20 }) {
  const cfg = new DataView(new ArrayBuffer(24)); // DvVmCreateConfig
  cfg.setBigUint64(0, BigInt(memSize), true);
  cfg.setUint32(8, 0, true); // DV_IRQCHIP_MODE_KERNEL
  cfg.setUint32(12, 0, true); // not strict
  cfg.setUint32(16, 1, true); // one vCPU (reserved at 20 stays 0)
  const out = new Uint32Array(1);
  check(dv, dv.dv_vm_create(cfg, out), "create VM");
  const vm = out[0];
  const image = readFileSync(join(ROOT, "guests", "build", `${elf}.elf`));
  const a = new BigUint64Array(4);
  args.forEach((v, i) => a[i] = BigInt(v));
  check(dv, dv.dv_vm_load_elf(vm, image, image.length, a), "load ELF");
  return vm;
}

/**
 * A port-I/O device: `base`, `len` and read/write handlers, like a TS
 * plugin's region. Each one becomes a forwarded range whose region tag is
 * its index, so the loop dispatches without searching.
 */
export function attach(dv, vm, devices) {
  devices.forEach((d, i) =>
    check(dv, dv.dv_vm_range_add(vm, 0, d.base, d.len, 0, i, 0), `range ${d.base}`)
  );
}

/**
 * Run vCPU 0 until a device returns `done` from a write or a non-I/O exit:
 * the exit loop in JS, reading the access from the external record and
 * answering reads by writing the record's data bytes.
 */
export function runLoop(dv, vm, devices, maxExits = 1_000_000) {
  const rec = dv.dv_vcpu_record_buffer(vm, 0);
  const view = new DataView(rec);
  let exits = 0;
  for (;;) {
    const reason = check(dv, dv.dv_vcpu_run(vm, 0), "run");
    exits++;
    if (reason !== Reason.Io) return { reason, exits, result: undefined };
    const dev = devices[view.getUint32(Off.region, true)];
    const port = view.getUint32(Off.address, true) - dev.base;
    const size = view.getUint32(Off.size, true);
    if (view.getUint32(Off.isWrite, true)) {
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + view.getUint8(Off.data + i);
      const r = dev.write(port, v, size);
      if (r !== undefined) return { reason, exits, result: r };
    } else {
      let v = dev.read(port, size);
      for (let i = 0; i < size; i++, v = Math.floor(v / 256)) {
        view.setUint8(Off.data + i, v & 0xff);
      }
    }
    if (exits >= maxExits) throw new Error(`no end after ${exits} exits`);
  }
}

/** A 16550-like transmitter: THR collects bytes, LSR says "empty". */
export function serialPort(base = 0x3f8) {
  const bytes = [];
  return {
    base, len: 8, bytes,
    text: () => Buffer.from(bytes).toString("latin1"),
    read: (port) => (port === 5 ? 0x60 : 0),
    write: (port, v) => {
      if (port === 0) bytes.push(v & 0xff);
    },
  };
}

/** The debug-exit port (0xF4): a write ends the run with its value. */
export function debugExit(base = 0xf4) {
  return { base, len: 4, read: () => 0, write: (_p, v) => v };
}
