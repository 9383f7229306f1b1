// Validate a glTF/GLB file with the Khronos glTF validator (npm `gltf-validator`).
// Usage: node tests/validate_gltf.mjs FILE  -> prints the JSON report's issues summary.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.resolve(process.cwd(), "package.json"));
const validator = require("gltf-validator");
const file = process.argv[2];
const report = await validator.validateBytes(new Uint8Array(readFileSync(file)), {
  uri: path.basename(file),
  maxIssues: 100,
});
console.log(JSON.stringify({
  numErrors: report.issues.numErrors,
  numWarnings: report.issues.numWarnings,
  messages: report.issues.messages.slice(0, 20),
  info: report.info,
}));
