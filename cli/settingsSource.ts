/**
 * Where the CLI finds its settings: the environment, over the `Values` of local.settings.json
 * when that file exists (the same file `func start` reads). The environment wins, whatever the
 * casing of the name.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SettingsError } from '../src/errors';

export const LOCAL_SETTINGS_FILE = 'local.settings.json';

export function loadSettingsEnv(env: NodeJS.ProcessEnv, directory = process.cwd()): Record<string, string | undefined> {
  const path = resolve(directory, LOCAL_SETTINGS_FILE);
  if (!existsSync(path)) return { ...env };
  let values: unknown;
  try {
    values = (JSON.parse(readFileSync(path, 'utf8')) as { Values?: unknown }).Values;
  } catch (error) {
    // A settings problem (exit 2), not a tool failure.
    throw new SettingsError([`${LOCAL_SETTINGS_FILE} is not valid JSON: ${(error as Error).message}`]);
  }
  const fromFile: Record<string, string> = {};
  if (values && typeof values === 'object') {
    for (const [name, value] of Object.entries(values)) {
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') fromFile[name] = String(value);
    }
  }
  // Names are case-insensitive (as in the host), so an environment variable replaces the file's
  // value under any spelling instead of standing beside it as a second, conflicting one.
  const fromEnv = Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== '');
  const overridden = new Set(fromEnv.map(([name]) => name.toLowerCase()));
  const merged: Record<string, string | undefined> = Object.fromEntries(Object.entries(fromFile).filter(([name]) => !overridden.has(name.toLowerCase())));
  for (const [name, value] of fromEnv) merged[name] = value;
  return merged;
}
