import { isAbsolute, join } from 'node:path';

/**
 * The toolkit runs opa inside the policy directory (-b .), as the build does, and puts file names
 * back in the caller's terms. With -b DIR instead, OPA 1.22 names the files of its not-covered
 * pass DIR/DIR/..., splitting each file's coverage in two.
 */
export const inDir = (dir: string) => (file: string): string => (isAbsolute(file) ? file : join(dir, file));
