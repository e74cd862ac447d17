// Where this platform's prebuilt denovmm core lies: the Node-API addon
// (Node, Bun) and the C library (Deno's FFI), both stripped, and the C
// ABI version they speak.
"use strict";
const { join } = require("node:path");
module.exports = {
  addon: join(__dirname, "denovmm.linux-x64-gnu.node"),
  library: join(__dirname, "libdenovmm_core.so"),
  abi: 3,
};
