/**
 * The JSON Schema that editors use for forwarder.yaml, generated from the valibot schema.
 * Regenerate with `npm run schema`; tests/config_test.ts fails when the committed file is out of date.
 */
import * as fs from "node:fs";
import { toJsonSchema } from "@valibot/to-json-schema";
import { ConfigSchema } from "../lib/config.ts";

export const SCHEMA_FILE = new URL("../lib/forwarder.schema.json", import.meta.url);

export function jsonSchema(): string {
  // Cross-field rules (rawCheck) have no JSON Schema form; the forwarder itself still enforces them.
  const schema = toJsonSchema(ConfigSchema, { errorMode: "ignore" });
  return `${
    JSON.stringify(
      { $schema: "http://json-schema.org/draft-07/schema#", title: "cloudwatch-forwarder config", ...schema },
      null,
      2,
    )
  }\n`;
}

if (import.meta.main) fs.writeFileSync(SCHEMA_FILE, jsonSchema());
