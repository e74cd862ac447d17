// Loads the denovmm core addon of this platform: $DENOVMM_NODE if set,
// else the addon of the platform package. Errors name the platform and the fix.
"use strict";
const ABI_VERSION = 3;

function platformPackage() {
  const { platform, arch } = process;
  if (platform !== "linux") return null; // KVM is Linux-only
  const report = typeof process.report?.getReport === "function"
    ? process.report.getReport()
    : null;
  const glibc = !!report?.header?.glibcVersionRuntime;
  if (arch === "x64" && glibc) return "@denovmm/core-linux-x64-gnu";
  return null;
}

function load() {
  if (process.env.DENOVMM_NODE) return require(process.env.DENOVMM_NODE);
  const pkg = platformPackage();
  if (!pkg) {
    throw new Error(
      `@denovmm/vmm/core: no prebuilt core for ${process.platform}-${process.arch}` +
        " (KVM needs Linux; prebuilt: linux-x64-gnu); build napi/ from the " +
        "repository and set DENOVMM_NODE to the .node file",
    );
  }
  try {
    return require(require(pkg).addon);
  } catch (e) {
    if (e && e.code === "MODULE_NOT_FOUND" && String(e.message).includes(pkg)) {
      throw new Error(
        `@denovmm/vmm/core: the platform package ${pkg} is not installed ` +
          "(optional dependencies skipped?); install it: npm install " + pkg,
      );
    }
    throw e;
  }
}

const core = load();
if (core.dv_abi_version() !== ABI_VERSION) {
  throw new Error(
    `@denovmm/vmm/core: the addon speaks ABI ${core.dv_abi_version()}, this ` +
      `package ABI ${ABI_VERSION}; install matching versions`,
  );
}
module.exports = core;
