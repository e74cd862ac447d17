/**
 * Build a guest of your own: `deno task guest path/to/my.c [more.c ...]
 * [-o out.elf]` compiles it with the guest runtime (`guests/lib`: entry,
 * serial, printf, IDT, LAPIC/IOAPIC helpers) and the project's flags, links
 * it at 1 MiB, and checks it for instructions this host's KVM cannot
 * emulate. Writes `my.elf` beside the first source unless `-o` says where.
 * The template is `guests/template/my_guest.c`.
 *
 * @module
 */
const guests = decodeURIComponent(
  new URL("../guests/", import.meta.url).pathname,
);

function usage(msg: string): never {
  console.error(`deno task guest: ${msg}
usage: deno task guest path/to/my.c [more.c ...] [-o out.elf]`);
  Deno.exit(2);
}

// `deno task` runs in the project root; INIT_CWD is where it was typed.
const cwd = Deno.env.get("INIT_CWD") ?? Deno.cwd();
const absolute = (p: string) => p.startsWith("/") ? p : `${cwd}/${p}`;
const args = [...Deno.args];
let out: string | undefined;
const o = args.indexOf("-o");
if (o >= 0) {
  out = args[o + 1];
  if (!out) usage("-o needs a file name");
  args.splice(o, 2);
  out = absolute(out);
}
if (args.length === 0) usage("no C source given");
args.forEach((a, i) => args[i] = a.startsWith("-") ? a : absolute(a));
for (const a of args) {
  if (a.startsWith("-")) usage(`unknown option ${a}`);
  try {
    if (!Deno.statSync(a).isFile) usage(`${a} is not a file`);
  } catch {
    usage(`${a}: no such file`);
  }
}
out ??= args[0].replace(/\.c$/, "") + ".elf";

const script = `source "${guests}lib/flags.sh"
exec "\${CC:-gcc}" "\${GUEST_CFLAGS[@]}" -I "${guests}lib" -I "${guests}" \\
  -T "${guests}lib/linker.ld" "\${GUEST_LDFLAGS[@]}" -o "$0" \\
  "${guests}lib/entry.S" "${guests}lib/rt.c" "$@"`;
const cc = await new Deno.Command("bash", {
  args: ["-c", script, out, ...args],
}).spawn().status;
if (!cc.success) {
  console.error("deno task guest: compiling failed (see above)");
  Deno.exit(1);
}
const check = await new Deno.Command("bash", {
  args: [`${guests}check_insns.sh`, out],
}).spawn().status;
if (!check.success) Deno.exit(1);
console.log(`built ${out}`);
