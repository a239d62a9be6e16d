// node --import ./register.mjs …/conformance/dist/index.js: installs hooks.mjs before the CLI loads.
import { register } from 'node:module';
register('./hooks.mjs', import.meta.url);
