// The Deno APIs the TS layer's boot path still calls, implemented with
// node:fs for ts_layer.test.mjs (loaded with `node --import`). This file
// IS the remaining gap: when vmm/host_file.ts and vmm/quirks.ts read files
// through a runtime-neutral module, it goes away. Prints which were used.
import fs from "node:fs";

const info = (s) => ({ isFile: s.isFile(), isDirectory: s.isDirectory(), size: s.size });
class DenoError extends Error {}
const used = new Set();
const track = (name, f) => (...a) => {
  used.add(name);
  return f(...a);
};
globalThis.Deno = {
  errors: {
    NotFound: DenoError, NotCapable: DenoError, PermissionDenied: DenoError,
    IsADirectory: DenoError,
  },
  // library.ts asks for permissions only because `Deno` now exists
  permissions: { querySync: () => ({ state: "granted" }) },
  env: { get: (k) => process.env[k] },
  statSync: track("statSync", (p) => info(fs.statSync(p))),
  openSync: track("openSync", (p) => {
    const fd = fs.openSync(p, "r");
    return {
      statSync: () => info(fs.fstatSync(fd)),
      readSync: (b) => {
        const n = fs.readSync(fd, b);
        return n === 0 ? null : n;
      },
      close: () => fs.closeSync(fd),
    };
  }),
  readTextFileSync: track("readTextFileSync", (p) => fs.readFileSync(p, "utf8")),
};
process.on("exit", () => console.log(`DENO_USED ${[...used].sort().join(",")}`));
