/**
 * The README's guides, run verbatim: "Writing a guest" (its shell block,
 * line by line, from the repository root). The device guide's code block
 * runs as a doc test (`deno test --doc`).
 */
import assert from "node:assert/strict";
import { HAVE_KVM } from "./kvm.ts";

const root = decodeURIComponent(new URL("..", import.meta.url).pathname);

/** The first ```sh block after `heading` in the README. */
function shBlock(heading: string): string[] {
  const readme = Deno.readTextFileSync(`${root}README.md`);
  const at = readme.indexOf(heading);
  assert.ok(at >= 0, `README has "${heading}"`);
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, `a sh block under "${heading}"`);
  return m[1].split("\n").map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => l && !l.startsWith("#"));
}

Deno.test({
  name: "guides: writing a guest, verbatim",
  ignore: !HAVE_KVM,
  fn: async () => {
    const lines = shBlock("## Writing a guest");
    assert.equal(lines.length, 3, lines.join("\n"));
    let last = { code: -1, out: "" };
    for (const line of lines) {
      const r = await new Deno.Command("bash", {
        args: ["-c", line],
        cwd: root,
        env: { NO_COLOR: "1" },
      }).output();
      const d = new TextDecoder();
      last = { code: r.code, out: d.decode(r.stdout) + d.decode(r.stderr) };
      assert.equal(r.code, 0, `${line}\n${last.out}`);
    }
    assert.match(last.out, /my guest: 2 \+ 3 = 5/);
  },
});
