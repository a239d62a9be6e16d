// Node 20's fs lacks globSync (added in Node 22), which the conformance CLI imports by name.
// This module is fs plus the glob package's globSync; hooks.mjs hands it to that CLI only.
import fs from 'node:fs';
export * from 'node:fs';
export { globSync } from 'glob';
export default fs;
