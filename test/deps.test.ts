/**
 * The composition root loads the Azure SDK clients (src/clients.ts) on the first call that
 * needs them, not when it is built: what it can answer from the settings alone it answers
 * before, and the one synchronous call that needs a client says so.
 */
import { describe, expect, it } from 'vitest';
import { parseSettings } from '../src/core/settings';
import { createDeps } from '../src/deps';
import { GraphRequestError } from '../src/errors';

const settings = () =>
  parseSettings({
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    PARTNER_STORAGE: 'UseDevelopmentStorage=true',
    EXPORT_CURRENCIES: 'EUR',
    POLL_QUEUE: 'my-polls',
    PARTNER_CONTAINER: 'my-exports',
  });
/** A credential that is never asked: the calls below are refused before any token is needed. */
const graphCredential = { getToken: () => Promise.reject(new Error('no token expected')) };

describe('createDeps', () => {
  it('names the queue and the container from the settings, before any client is loaded', () => {
    const deps = createDeps(settings(), { graphCredential });
    expect(deps.queue.name).toBe('my-polls');
    expect(deps.destination.containerName).toBe('my-exports');
  });

  it('refuses a blob URL before the storage clients are loaded, saying what to do', () => {
    const deps = createDeps(settings(), { graphCredential });
    expect(() => deps.destination.url('2026-10/manifest.json')).toThrow(
      "The URL of '2026-10/manifest.json' was asked for before the storage clients were loaded: await deps.ready() first",
    );
  });

  it('loads the clients on the first call, which then answers as the adapter does', async () => {
    const deps = createDeps(settings(), { graphCredential });

    const refused = await deps.graph.get('https://elsewhere.example/operations/1').catch((thrown: unknown) => thrown);

    expect(refused).toBeInstanceOf(GraphRequestError);
    expect(refused).toMatchObject({ code: 'ForeignOrigin' });
    expect(deps.destination.url('2026-10/manifest.json')).toBe('http://127.0.0.1:10000/devstoreaccount1/my-exports/2026-10/manifest.json');
  });
});
