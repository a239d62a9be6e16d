import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../util/tools.js';

/**
 * Names of the images `make base-image` and `make images` build (images/images.env and the
 * Makefile are the source; a unit test keeps these equal). The environment variables the
 * Makefile exports win, so a test run under make uses exactly what make built.
 */

/** Debian + Node.js (>= 20) + Python 3, users tollgate (65532) and envoy (101); USER 65532. */
export const DEFAULT_BASE_IMAGE = 'localhost/tollgate-base:trixie-2';
export const TOLLGATE_IMAGE_REPO = 'localhost/tollgate';
export const ENVOY_IMAGE_REPO = 'localhost/tollgate-envoy';
/** The Envoy release the Makefile installs (ENVOY_VERSION) and packs into the envoy image. */
export const ENVOY_VERSION = '1.40.0';

export function baseImage(): string {
  return process.env.TOLLGATE_BASE_IMAGE || DEFAULT_BASE_IMAGE;
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** The image with every `tollgate` command (plus opa and nats-server). */
export function tollgateImage(): string {
  return process.env.TOLLGATE_IMAGE || `${TOLLGATE_IMAGE_REPO}:${packageVersion()}`;
}

/** Envoy for the sidecars, built from the same base. */
export function envoyImage(): string {
  return process.env.TOLLGATE_ENVOY_IMAGE || `${ENVOY_IMAGE_REPO}:${ENVOY_VERSION}`;
}
