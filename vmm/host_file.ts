/**
 * Reading host files named by the user (guest images, modules, disks,
 * configs) with errors that name the file, what it was for and the cause:
 * missing, permission denied (by the OS or by Deno's permissions), a
 * directory or other non-regular file, or larger than the limit.
 *
 * @module
 */

import { host, type HostFile, type HostFileInfo } from "../ffi/host.ts";

/** Why a host file could not be used. */
export type HostFileProblem =
  | "missing"
  | "permission"
  | "directory"
  | "not-a-file"
  | "too-big"
  | "invalid"
  | "io";

/** A host file that could not be used; the message names path and cause. */
export class HostFileError extends Error {
  /** The path as given. */
  readonly path: string;
  /** What was wrong. */
  readonly problem: HostFileProblem;
  /** Create an error about `path`. */
  constructor(
    what: string,
    path: string,
    problem: HostFileProblem,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`${what} "${path}": ${detail}`, options);
    this.name = "HostFileError";
    this.path = path;
    this.problem = problem;
  }
}

/** Options of {@link readHostFile} and {@link checkHostFile}. */
export interface HostFileOptions {
  /** What the file is for, used in messages (default `file`). */
  what?: string;
  /** Largest accepted size in bytes (default 1 GiB). */
  maxBytes?: number;
  /** Also require write access ({@link checkHostFile} only). */
  write?: boolean;
}

const DEFAULT_MAX = 2 ** 30;

function sizeText(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/**
 * Turn a runtime's file-system error into a {@link HostFileError}.
 *
 * @example
 * ```ts
 * import { hostFileError } from "./host_file.ts";
 * const e = hostFileError(new HostFileError("disk", "a.img", "missing", "no such file"), "disk", "a.img");
 * console.log(e.message); // disk "a.img": no such file
 * ```
 */
export function hostFileError(
  e: unknown,
  what: string,
  path: string,
  write = false,
): HostFileError {
  if (e instanceof HostFileError) return e;
  const cause = { cause: e };
  const kind = host.errorKind(e);
  if (kind === "missing") {
    return new HostFileError(what, path, "missing", "no such file", cause);
  }
  if (kind === "not-capable") {
    return new HostFileError(
      what,
      path,
      "permission",
      `not allowed by Deno's permissions (run with --allow-read${
        write ? " --allow-write" : ""
      })`,
      cause,
    );
  }
  if (kind === "permission") {
    return new HostFileError(
      what,
      path,
      "permission",
      `permission denied (needs ${write ? "read and write" : "read"} access)`,
      cause,
    );
  }
  if (kind === "directory") {
    return new HostFileError(what, path, "directory", "is a directory", cause);
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new HostFileError(what, path, "io", msg, cause);
}

function checkInfo(
  info: HostFileInfo,
  what: string,
  path: string,
  maxBytes: number,
): void {
  if (info.isDirectory) {
    throw new HostFileError(what, path, "directory", "is a directory");
  }
  if (!info.isFile) {
    throw new HostFileError(what, path, "not-a-file", "is not a regular file");
  }
  if (info.size > maxBytes) {
    throw new HostFileError(
      what,
      path,
      "too-big",
      `is ${sizeText(info.size)}, over the ${sizeText(maxBytes)} limit`,
    );
  }
}

/**
 * Read a whole host file, checking it is a regular file within
 * `maxBytes` first: on the path (so a FIFO or device is never opened) and
 * again on the open descriptor (so a rename in between is caught).
 *
 * @example
 * ```ts ignore
 * import { readHostFile } from "./host_file.ts";
 * const elf = readHostFile("guests/build/hello.elf", { what: "guest image" });
 * ```
 */
export function readHostFile(
  path: string,
  options: HostFileOptions = {},
): Uint8Array {
  const what = options.what ?? "file";
  const maxBytes = options.maxBytes ?? DEFAULT_MAX;
  let file: HostFile | undefined;
  try {
    // Stat the path before opening it: opening a FIFO would block until a
    // writer comes, and a device would be read forever.
    checkInfo(host.stat(path), what, path, maxBytes);
    file = host.open(path, { read: true });
    const info = file.stat();
    checkInfo(info, what, path, maxBytes);
    const buf = new Uint8Array(info.size);
    let off = 0;
    while (off < buf.length) {
      const n = file.readAt(buf.subarray(off), off);
      if (n === 0) break;
      off += n;
    }
    return off === buf.length ? buf : buf.slice(0, off);
  } catch (e) {
    throw hostFileError(e, what, path);
  } finally {
    file?.close();
  }
}

/**
 * Check that a host file exists, is a regular file within `maxBytes`
 * (default: no limit) and can be opened for reading (and writing with
 * `write: true`); returns its information.
 *
 * @example
 * ```ts ignore
 * import { checkHostFile } from "./host_file.ts";
 * const info = checkHostFile("disk.img", { what: "--disk", write: true });
 * console.log(info.size);
 * ```
 */
export function checkHostFile(
  path: string,
  options: HostFileOptions = {},
): HostFileInfo {
  const what = options.what ?? "file";
  const maxBytes = options.maxBytes ?? Number.MAX_SAFE_INTEGER;
  let file: HostFile | undefined;
  try {
    checkInfo(host.stat(path), what, path, maxBytes); // never open a FIFO
    file = host.open(path, { read: true, write: options.write ?? false });
    const info = file.stat();
    checkInfo(info, what, path, maxBytes);
    return info;
  } catch (e) {
    throw hostFileError(e, what, path, options.write);
  } finally {
    file?.close();
  }
}
