/**
 * The testing kit for device authors (`@denovmm/vmm/testing`): a
 * recording {@link FakeContext} (interrupt sources with the VM's own
 * wired-OR/mask/pending rules, a {@link FakeMemory}, a {@link FakeClock},
 * {@link FakeTickSource}s, logs, mappings, exit/halt), and helpers that
 * drive a region as a guest would. Nothing here needs KVM.
 *
 * @example
 * ```ts
 * import { FakeContext, readValue, writeValue } from "./mod.ts";
 * import type { Plugin } from "../../mod.ts";
 *
 * // a device: a byte register at port 0x600; writing 1 raises line 5
 * const dev: Plugin = {
 *   name: "doorbell",
 *   setup(ctx) {
 *     const irq = ctx.interruptLine(5, "edge");
 *     let reg = 0;
 *     return [{
 *       range: { space: "pio", base: 0x600, length: 1 },
 *       read: (_a, d) => void (d[0] = reg),
 *       write: (_a, d) => {
 *         reg = d[0];
 *         if (reg === 1) irq.trigger();
 *       },
 *     }];
 *   },
 * };
 *
 * const ctx = new FakeContext();
 * const [port] = dev.setup(ctx);
 * writeValue(port, 0, 1, 1);
 * console.log(readValue(port, 0, 1), ctx.events); // 1 [{ kind: "pulse", gsi: 5 }]
 * ```
 *
 * @module
 */
export {
  access,
  FakeClock,
  FakeContext,
  FakeMemory,
  FakeTickSource,
  type IrqEvent,
  readValue,
  writeValue,
} from "./fake_context.ts";
