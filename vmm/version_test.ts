import assert from "node:assert/strict";
import { VERSION } from "./version.ts";

Deno.test("VERSION matches deno.json", () => {
  const json = JSON.parse(
    Deno.readTextFileSync(new URL("../deno.json", import.meta.url)),
  );
  assert.equal(VERSION, json.version);
});
