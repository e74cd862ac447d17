/**
 * The project's test command (`./deno task test`): builds the core, the
 * napi addon and the guests, runs `cargo test`, `deno test` and the Node
 * tests of the addon (`node --test napi/test/`, skipped loudly without
 * `node`), streams their output and ends with one line
 * `N passed, M failed` summed over all runners.
 *
 * @module
 */

/** Counts read from a runner's summary lines. */
export interface Tally {
  /** Tests passed. */
  passed: number;
  /** Tests failed. */
  failed: number;
}

const ANSI = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g");

/**
 * Sum `cargo test` ("test result: ok. 5 passed; 0 failed"), `deno test`
 * ("ok | 12 passed (80 steps) | 0 failed") and `node --test` TAP
 * ("# pass 4" / "# fail 0") summary lines in `text`.
 *
 * @example
 * ```ts
 * import { tally } from "./test_all.ts";
 * console.log(tally("test result: ok. 3 passed; 1 failed; 0 ignored"));
 * console.log(tally("# tests 4\n# pass 4\n# fail 0\n")); // 4 passed
 * ```
 */
export function tally(text: string): Tally {
  const clean = text.replace(ANSI, "");
  let passed = 0;
  let failed = 0;
  for (
    const m of clean.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)
  ) {
    passed += Number(m[1]);
    failed += Number(m[2]);
  }
  for (
    const m of clean.matchAll(
      /^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/gm,
    )
  ) {
    passed += Number(m[1]);
    failed += Number(m[2]);
  }
  for (const m of clean.matchAll(/^# pass (\d+)$/gm)) passed += Number(m[1]);
  for (const m of clean.matchAll(/^# fail (\d+)$/gm)) failed += Number(m[1]);
  return { passed, failed };
}

/** True when `cmd --version` runs (the tool is installed). */
async function have(cmd: string): Promise<boolean> {
  try {
    const r = await new Deno.Command(cmd, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success;
  } catch {
    return false;
  }
}

/**
 * Build the napi addon with plain cargo and copy it to the `.node` name
 * the Node tests and `napi_backend_test.ts` load (`npm run build` in
 * `napi/` does the same and regenerates `index.d.ts`).
 */
async function buildAddon(root: string): Promise<boolean> {
  const r = await step("build napi addon", [
    "cargo",
    "build",
    "--release",
    "--manifest-path",
    `${root}napi/Cargo.toml`,
  ]);
  if (!r.ok) return false;
  Deno.copyFileSync(
    `${root}napi/target/release/libdenovmm_napi.so`,
    `${root}napi/denovmm.linux-x64-gnu.node`,
  );
  return true;
}

async function step(
  name: string,
  cmd: string[],
  cwd?: string,
): Promise<{ ok: boolean; out: string }> {
  console.log(`\n=== ${name}: ${cmd.join(" ")}`);
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const dec = new TextDecoder();
  let out = "";
  const pump = async (
    s: ReadableStream<Uint8Array>,
    to: typeof Deno.stdout,
  ) => {
    for await (const chunk of s) {
      out += dec.decode(chunk, { stream: true });
      await to.write(chunk);
    }
  };
  await Promise.all([
    pump(child.stdout, Deno.stdout),
    pump(child.stderr, Deno.stderr),
  ]);
  const status = await child.status;
  return { ok: status.success, out };
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname;
  const deno = Deno.execPath();
  if (
    !(await step("build core", [
      "cargo",
      "build",
      "--release",
      "--manifest-path",
      `${root}core/Cargo.toml`,
    ])).ok
  ) Deno.exit(1);
  if (!(await buildAddon(root))) Deno.exit(1);
  if (!(await step("build guests", ["bash", `${root}guests/build.sh`])).ok) {
    Deno.exit(1);
  }
  // the CLI's single-file bundle (cli.ts falls back to source without it)
  if (
    !(await step("bundle cli", [
      deno,
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      `${root}tools/bundle_cli.ts`,
    ])).ok
  ) Deno.exit(1);
  const cargo = await step("cargo test", [
    "cargo",
    "test",
    "--release",
    "--manifest-path",
    `${root}core/Cargo.toml`,
  ]);
  const dtest = await step("deno test", [deno, "test", "-A", "--doc"], root);
  let ntest = { ok: true, out: "" };
  if (await have("node")) {
    // The TS-layer test compiles with tsc from napi's dev dependencies: a
    // clean checkout installs them from the lock file (npm is required, as
    // for ./deno itself).
    try {
      Deno.statSync(`${root}napi/node_modules/.bin/tsc`);
    } catch {
      await step("napi dev dependencies", [
        "npm",
        "ci",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
      ], `${root}napi`);
    }
    const files = [...Deno.readDirSync(`${root}napi/test`)]
      .map((e) => e.name).filter((n) => n.endsWith(".test.mjs")).sort()
      .map((n) => `${root}napi/test/${n}`);
    ntest = await step("node test", [
      "node",
      "--test",
      "--test-reporter=tap",
      ...files,
    ], root);
  } else {
    console.log(
      "\n*** node is not installed: the Node tests of the napi addon " +
        "(napi/test/*.test.mjs) are SKIPPED ***",
    );
  }
  const t = tally(cargo.out + dtest.out + ntest.out);
  // A runner that failed without a failing test (a type error, a crash)
  // counts as one failure, so the summary never reads clean when it is not.
  for (
    const [name, r] of [
      ["cargo test", cargo],
      ["deno test", dtest],
      ["node test", ntest],
    ] as const
  ) {
    const counted = tally(r.out).failed;
    if (!r.ok && counted === 0) {
      console.log(`\n*** ${name} failed outside any test (see above) ***`);
      t.failed++;
    }
  }
  const ok = cargo.ok && dtest.ok && ntest.ok && t.failed === 0 && t.passed > 0;
  console.log(`\n${t.passed} passed, ${t.failed} failed`);
  Deno.exit(ok ? 0 : 1);
}
