/**
 * Host services for the runtime-neutral TS layer: files, the environment,
 * stdio and workers. Everything above `ffi/` reaches the host through
 * {@link host} and never names a runtime; this module alone picks the
 * implementation, once, at startup: Deno's APIs under Deno, `node:fs`,
 * `node:worker_threads` and `process` elsewhere (Node >= 20, Bun).
 *
 * Files are read and written at explicit positions (no shared seek
 * pointer), synchronously: the vCPU loop and device models run
 * synchronously on their thread.
 *
 * @module
 */

import type * as NodeFs from "node:fs";
import type * as NodeWorkerThreads from "node:worker_threads";
import type * as NodeStream from "node:stream";
import type { ReadStream } from "node:tty";
import type * as NodeUrl from "node:url";
import { builtin } from "./builtin.ts";

/** What a stat of a host file says. */
export interface HostFileInfo {
  /** A regular file. */
  isFile: boolean;
  /** A directory. */
  isDirectory: boolean;
  /** Size in bytes. */
  size: number;
}

/** How to open a host file. */
export interface HostOpenOptions {
  /** Open for reading (default true). */
  read?: boolean;
  /** Open for writing. */
  write?: boolean;
  /** Create it; fail if it exists. */
  createNew?: boolean;
  /** Permission bits when created. */
  mode?: number;
}

/** An open host file with positional, synchronous I/O. */
export interface HostFile {
  /** Read into `buf` at byte `position`; returns the count (0 at EOF). */
  readAt(buf: Uint8Array, position: number): number;
  /** Write from `buf` at byte `position`; returns the count written. */
  writeAt(buf: Uint8Array, position: number): number;
  /** Stat the open descriptor. */
  stat(): HostFileInfo;
  /** Set the length to `size` bytes. */
  truncate(size: number): void;
  /** fdatasync. */
  syncData(): void;
  /** fsync. */
  sync(): void;
  /** Close the descriptor. */
  close(): void;
}

/**
 * The cause of a failed host file operation, as far as the runtime says:
 * `not-capable` is a runtime permission (Deno's `--allow-read`),
 * `permission` the OS's.
 */
export type HostErrorKind =
  | "missing"
  | "not-capable"
  | "permission"
  | "directory"
  | "other";

/** A worker thread running a module, as seen from its parent. */
export interface HostWorker {
  /** Send `message` (structured clone). */
  postMessage(message: unknown): void;
  /** Called with each message the worker posts. */
  onMessage(handler: (data: unknown) => void): void;
  /** Called once when the worker fails (an uncaught error). */
  onError(handler: (message: string) => void): void;
  /** End the worker now. */
  terminate(): void;
}

/** The parent, as seen from inside a worker. */
export interface HostParentPort {
  /** Send `message` to the parent. */
  postMessage(message: unknown): void;
  /** Called with each message from the parent. */
  onMessage(handler: (data: unknown) => void): void;
}

/** The host services; one implementation per runtime. */
export interface Host {
  /** Which runtime this is. */
  readonly runtime: "deno" | "node";
  /** The operating system (`linux`, `darwin`, ...). */
  readonly os: string;
  /** The CPU architecture (`x86_64`, `aarch64`, ...). */
  readonly arch: string;
  /** Stat `path` (follows links). */
  stat(path: string): HostFileInfo;
  /** Open `path`. */
  open(path: string, options?: HostOpenOptions): HostFile;
  /** Read a whole UTF-8 text file. */
  readTextFile(path: string): string;
  /** Change permission bits. */
  chmod(path: string, mode: number): void;
  /** Remove a file. */
  remove(path: string): void;
  /** Rename `from` over `to`. */
  rename(from: string, to: string): void;
  /** The working directory. */
  cwd(): string;
  /**
   * An environment variable, or undefined when unset or not readable
   * (Deno without `--allow-env` for it: never prompts).
   */
  env(name: string): string | undefined;
  /** Whether `env(name)` can be read at all (false: missing permission). */
  envReadable(name: string): boolean;
  /** Classify an error thrown by a file operation. */
  errorKind(e: unknown): HostErrorKind;
  /** Write to stdout; returns the count written. */
  writeStdout(bytes: Uint8Array): number;
  /** Whether stderr is a terminal. */
  stderrIsTerminal(): boolean;
  /** The next chunk of stdin, or null at its end. */
  readStdin(): Promise<Uint8Array | null>;
  /** Switch the stdin terminal to raw mode or back (throws if not a tty). */
  setStdinRaw(raw: boolean): void;
  /** Start a worker running the ES module `url`. */
  spawnWorker(url: URL): HostWorker;
  /** The parent port, in a worker started by {@link Host.spawnWorker}. */
  parentPort(): HostParentPort;
}

type DenoNs = typeof Deno;

function denoHost(D: DenoNs): Host {
  const info = (i: Deno.FileInfo): HostFileInfo => ({
    isFile: i.isFile,
    isDirectory: i.isDirectory,
    size: i.size,
  });
  return {
    runtime: "deno",
    os: D.build.os,
    arch: D.build.arch,
    stat: (p) => info(D.statSync(p)),
    open(p, o = {}) {
      const f = D.openSync(p, {
        read: o.read ?? true,
        write: o.write ?? false,
        createNew: o.createNew,
        mode: o.mode,
      });
      return {
        readAt(buf, pos) {
          f.seekSync(pos, D.SeekMode.Start);
          return f.readSync(buf) ?? 0;
        },
        writeAt(buf, pos) {
          f.seekSync(pos, D.SeekMode.Start);
          return f.writeSync(buf);
        },
        stat: () => info(f.statSync()),
        truncate: (n) => f.truncateSync(n),
        syncData: () => f.syncDataSync(),
        sync: () => f.syncSync(),
        close: () => f.close(),
      };
    },
    readTextFile: (p) => D.readTextFileSync(p),
    chmod: (p, m) => D.chmodSync(p, m),
    remove: (p) => D.removeSync(p),
    rename: (a, b) => D.renameSync(a, b),
    cwd: () => D.cwd(),
    envReadable: (name) =>
      D.permissions.querySync({ name: "env", variable: name }).state ===
        "granted",
    env(name) {
      if (!this.envReadable(name)) return undefined;
      return D.env.get(name);
    },
    errorKind(e) {
      if (e instanceof D.errors.NotFound) return "missing";
      if (e instanceof D.errors.NotCapable) return "not-capable";
      if (e instanceof D.errors.PermissionDenied) return "permission";
      if (e instanceof D.errors.IsADirectory) return "directory";
      return "other";
    },
    writeStdout: (b) => D.stdout.writeSync(b),
    stderrIsTerminal: () => D.stderr.isTerminal(),
    // Plain reads, not `stdin.readable`: the first use of Deno's web
    // streams costs 3-17 ms here, on every CLI start.
    readStdin: async () => {
      const buf = new Uint8Array(4096);
      const n = await D.stdin.read(buf);
      return n === null ? null : buf.subarray(0, n);
    },
    setStdinRaw: (raw) =>
      raw ? D.stdin.setRaw(true, { cbreak: false }) : D.stdin.setRaw(false),
    spawnWorker(url) {
      const w = new Worker(url, { type: "module" });
      return {
        postMessage: (m) => w.postMessage(m),
        onMessage: (h) => w.onmessage = (e: MessageEvent) => h(e.data),
        onError: (h) =>
          w.onerror = (e: ErrorEvent) => {
            e.preventDefault();
            h(e.message);
          },
        terminate: () => w.terminate(),
      };
    },
    parentPort() {
      const self = globalThis as unknown as {
        postMessage(m: unknown): void;
        onmessage: ((e: MessageEvent) => void) | null;
      };
      return {
        postMessage: (m) => self.postMessage(m),
        onMessage: (h) => self.onmessage = (e) => h(e.data),
      };
    },
  };
}

/** Node's error codes to kinds. */
function nodeErrorKind(e: unknown): HostErrorKind {
  const code = (e as { code?: string } | null)?.code;
  if (code === "ENOENT") return "missing";
  if (code === "EACCES" || code === "EPERM") return "permission";
  if (code === "EISDIR") return "directory";
  return "other";
}

/**
 * A module URL to run in a worker: the `.ts` source beside the module, or
 * its compiled `.js` (the npm build) when there is no source.
 */
function runnableUrl(url: URL, fs: typeof NodeFs): URL {
  if (url.protocol === "file:" && url.pathname.endsWith(".ts")) {
    const { fileURLToPath } = builtin<typeof NodeUrl>("node:url");
    if (!fs.existsSync(fileURLToPath(url))) {
      return new URL(url.href.replace(/\.ts$/, ".js"));
    }
  }
  return url;
}

function nodeHost(): Host {
  // fetched here, not imported: under Deno this function never runs
  const fs = builtin<typeof NodeFs>("node:fs");
  const workerThreads = builtin<typeof NodeWorkerThreads>(
    "node:worker_threads",
  );
  let stdinReader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const proc = (globalThis as unknown as {
    process: {
      env: Record<string, string | undefined>;
      platform: string;
      arch: string;
      cwd(): string;
      stdin: ReadStream;
      stderr: { isTTY?: boolean };
    };
  }).process;
  const info = (s: NodeFs.Stats): HostFileInfo => ({
    isFile: s.isFile(),
    isDirectory: s.isDirectory(),
    size: s.size,
  });
  return {
    runtime: "node",
    os: proc.platform,
    arch: ({ x64: "x86_64", arm64: "aarch64" } as Record<string, string>)[
      proc.arch
    ] ?? proc.arch,
    stat: (p) => info(fs.statSync(p)),
    open(p, o = {}) {
      const write = o.write ?? false;
      let flags = write ? (o.read ?? true ? "r+" : "w") : "r";
      if (o.createNew) flags = write && (o.read ?? false) ? "wx+" : "wx";
      const fd = fs.openSync(p, flags, o.mode);
      return {
        readAt: (buf, pos) => fs.readSync(fd, buf, 0, buf.length, pos),
        writeAt: (buf, pos) => fs.writeSync(fd, buf, 0, buf.length, pos),
        stat: () => info(fs.fstatSync(fd)),
        truncate: (n) => fs.ftruncateSync(fd, n),
        syncData: () => fs.fdatasyncSync(fd),
        sync: () => fs.fsyncSync(fd),
        close: () => fs.closeSync(fd),
      };
    },
    readTextFile: (p) => fs.readFileSync(p, "utf8"),
    chmod: (p, m) => fs.chmodSync(p, m),
    remove: (p) => fs.rmSync(p),
    rename: (a, b) => fs.renameSync(a, b),
    cwd: () => proc.cwd(),
    envReadable: () => true, // no permission model for the environment
    env: (name) => proc.env[name],
    errorKind: nodeErrorKind,
    writeStdout: (b) => fs.writeSync(1, b),
    stderrIsTerminal: () => !!proc.stderr.isTTY,
    readStdin: async () => {
      stdinReader ??= (builtin<typeof NodeStream>("node:stream").Readable
        .toWeb(proc.stdin) as unknown as ReadableStream<Uint8Array>)
        .getReader();
      const r = await stdinReader.read();
      return r.done ? null : r.value;
    },
    setStdinRaw(raw) {
      if (!proc.stdin.isTTY) throw new Error("stdin is not a terminal");
      proc.stdin.setRawMode(raw);
    },
    spawnWorker(url) {
      const w = new workerThreads.Worker(runnableUrl(url, fs));
      let failed = false;
      return {
        postMessage: (m) => w.postMessage(m),
        onMessage: (h) => w.on("message", h),
        onError: (h) =>
          w.on("error", (e: Error) => {
            if (failed) return;
            failed = true;
            h(e.message);
          }),
        terminate: () => void w.terminate(),
      };
    },
    parentPort() {
      const port = workerThreads.parentPort;
      if (!port) throw new Error("not in a worker");
      return {
        postMessage: (m) => port.postMessage(m),
        onMessage: (h) => port.on("message", h),
      };
    },
  };
}

/** Which runtime is executing, decided once. */
function detect(): Host {
  const d = (globalThis as { Deno?: DenoNs }).Deno;
  return d && typeof d.openSync === "function" ? denoHost(d) : nodeHost();
}

/**
 * The host services of the runtime this module runs on.
 *
 * @example
 * ```ts
 * import { host } from "./host.ts";
 * console.log(host.runtime, host.cwd().length > 0);
 * ```
 */
export const host: Host = detect();
