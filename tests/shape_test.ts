/**
 * The shape the code promises its reviewers: an entry script that fits one screen, no sprawling declarations,
 * and no import cycles among lib/ files. Read from the source text, as a reviewer would.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

const root = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const read = (file: string) => fs.readFileSync(path.join(root, file), "utf8");

/** Every .ts file below lib/, relative to the project root. */
function libFiles(dir = "lib"): string[] {
  return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? libFiles(path.join(dir, e.name))
      : e.name.endsWith(".ts")
      ? [path.join(dir, e.name)]
      : []
  );
}

/**
 * Top-level declarations and their spans in lines. Formatted code starts each one in column 0; a span ends
 * where the next begins, less the comments and blank lines before it.
 */
export function declarations(text: string): { name: string; line: number; lines: number }[] {
  const lines = text.split("\n");
  const starts: number[] = [];
  lines.forEach((l, i) => {
    if (/^(export |async |function|const |let |class |interface |type |enum |if \()/.test(l)) starts.push(i);
  });
  return starts.map((start, k) => {
    let end = (starts[k + 1] ?? lines.length) - 1;
    while (end > start && /^(\s*$|\/\/|\/\*\*|\s\*)/.test(lines[end]!)) end--;
    const name = /(?:function\*?|const|let|class|interface|type|enum)\s+(\w+)/.exec(lines[start]!)?.[1] ??
      lines[start]!.slice(0, 40);
    return { name, line: start + 1, lines: end - start + 1 };
  });
}

/** The lib/ files a file imports, statically or dynamically, as paths relative to the project root. */
function importsOf(file: string): string[] {
  const text = read(file);
  const found = [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+\.ts)"/g)].map((m) => m[1]!);
  return found.map((spec) => path.normalize(path.join(path.dirname(file), spec)))
    .filter((p) => p.startsWith("lib/"));
}

test("declarations() measures top-level declarations up to the next one", () => {
  const text = [
    "/** a */",
    "export function a() {",
    "  return 1;",
    "}",
    "",
    "// b",
    "const b = 2;",
    "",
  ].join("\n");
  assert.deepEqual(declarations(text), [{ name: "a", line: 2, lines: 3 }, { name: "b", line: 7, lines: 1 }]);
});

test("forward.ts fits one screen: at most 150 lines", () => {
  const n = read("forward.ts").trimEnd().split("\n").length;
  assert.ok(n <= 150, `forward.ts has ${n} lines`);
});

test("no top-level declaration in forward.ts or lib/ spans more than 100 lines", () => {
  const long = ["forward.ts", ...libFiles()].flatMap((f) =>
    declarations(read(f)).filter((d) => d.lines > 100).map((d) =>
      `${f}:${d.line} ${d.name} (${d.lines} lines)`
    )
  );
  assert.deepEqual(long, []);
});

test("lib/ files import each other without cycles", () => {
  const graph = new Map(libFiles().map((f) => [f, importsOf(f)]));
  const cycles: string[] = [];
  const visit = (f: string, trail: string[]) => {
    if (trail.includes(f)) return void cycles.push([...trail.slice(trail.indexOf(f)), f].join(" -> "));
    for (const g of graph.get(f) ?? []) visit(g, [...trail, f]);
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual([...new Set(cycles)], []);
});

test("only lib/aws.ts imports the AWS SDK, and the emulator imports nothing of the forwarder's", () => {
  for (const f of ["forward.ts", ...libFiles()]) {
    const text = read(f);
    if (f !== "lib/aws.ts") assert.doesNotMatch(text, /from "@aws-sdk\//, `${f} imports the AWS SDK`);
    const isEmulator = f === "lib/emulator.ts" || f.startsWith("lib/emulator/");
    for (const dep of importsOf(f)) {
      const depIsEmulator = dep === "lib/emulator.ts" || dep.startsWith("lib/emulator/");
      if (f !== "lib/demo.ts") assert.equal(depIsEmulator, isEmulator, `${f} imports ${dep}`);
    }
  }
});
