/**
 * Counts the app's own requests from inside its process, without touching its code: storage
 * calls through node:http's diagnostics channels (the Azure SDKs use node:http), Graph calls
 * through a wrapper around global fetch (the Graph adapter uses fetch). Each request gets a kind
 * such as "blob HEAD source" or "queue POST messages" and its start and end times.
 */
import { subscribe } from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage } from 'node:http';

export interface RequestEntry {
  /** blob, queue, table, identity, graph or other. */
  readonly service: string;
  /** e.g. "blob HEAD source", "blob PUT copy", "graph GET operation". */
  readonly kind: string;
  readonly path: string;
  /** performance.now() in this process. */
  readonly startedAt: number;
  endedAt?: number;
  status?: number;
  /** For Graph operation GETs: the `status` field of the answer. */
  operationStatus?: string;
  /** Whether the request opened a new connection (node:http requests only). */
  newConnection?: boolean;
  /**
   * This process's CPU time (user + system, ms) when the request started: table requests only
   * (the ledger's, a few per run; marks such as the data check plan's write), to keep the cost
   * of reading the clock off the landing's hundreds of blob requests.
   */
  readonly cpuAtStart?: number;
}

export interface RequestLogOptions {
  /** port → service, from the app settings. */
  readonly ports: ReadonlyMap<number, string>;
  /** The account the export's files live in; other blob accounts are the destination. */
  readonly sourceAccount: string;
}

export class RequestLog {
  readonly entries: RequestEntry[] = [];
  private readonly byRequest = new WeakMap<ClientRequest, RequestEntry>();
  /** Called when a response has been read to its end. */
  onEnd?: (entry: RequestEntry) => void;

  constructor(private readonly options: RequestLogOptions) {
    subscribe('http.client.request.start', (message) => this.started((message as { request: ClientRequest }).request));
    subscribe('http.client.response.finish', (message) => {
      const { request, response } = message as { request: ClientRequest; response: IncomingMessage };
      const entry = this.byRequest.get(request);
      if (!entry) return;
      entry.newConnection = !request.reusedSocket;
      // "finish" fires when the headers are in; the body follows (the SDK reads it at once).
      const end = () => this.ended(entry, response.statusCode);
      if (response.complete) end();
      else response.once('end', end).once('close', end);
    });
  }

  /** Wraps global fetch; call before the app creates its Graph client (it keeps the fetch it finds). */
  wrapFetch(): void {
    const original = globalThis.fetch;
    globalThis.fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
      const what = /\/operations\//.test(url.pathname)
        ? 'operation'
        : /\/manifests\//.test(url.pathname)
          ? 'manifest'
          : /\/export$/.test(url.pathname)
            ? 'export'
            : 'other';
      const entry: RequestEntry = { service: 'graph', kind: `graph ${method} ${what}`, path: url.pathname, startedAt: performance.now() };
      this.entries.push(entry);
      const response = await original(input, init);
      if (what === 'operation' && response.ok) {
        const body = (await response
          .clone()
          .json()
          .catch(() => undefined)) as { status?: unknown } | undefined;
        if (typeof body?.status === 'string') entry.operationStatus = body.status;
      }
      this.ended(entry, response.status);
      return response;
    };
  }

  /** Requests by kind that started within [from, to]. */
  countByKind(from = -Infinity, to = Infinity, predicate: (entry: RequestEntry) => boolean = () => true): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const entry of this.entries) {
      if (entry.startedAt < from || entry.startedAt > to || !predicate(entry)) continue;
      counts[entry.kind] = (counts[entry.kind] ?? 0) + 1;
    }
    return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
  }

  /** Median latency (ms) by kind of the answered requests that started within [from, to]. */
  medianLatencyByKind(from = -Infinity, to = Infinity): Record<string, number> {
    const latencies: Record<string, number[]> = {};
    for (const entry of this.entries) {
      if (entry.startedAt < from || entry.startedAt > to || entry.endedAt === undefined) continue;
      (latencies[entry.kind] ??= []).push(entry.endedAt - entry.startedAt);
    }
    return Object.fromEntries(
      Object.entries(latencies)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([kind, values]) => {
          const sorted = values.sort((a, b) => a - b);
          const middle = Math.floor(sorted.length / 2);
          return [kind, Math.round((sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2) * 10) / 10];
        }),
    );
  }

  /** By kind, when the first request that started within [from, to] started and the last ended, in ms after `from`. */
  spansByKind(from: number, to: number): Record<string, { readonly firstStartMs: number; readonly lastEndMs: number }> {
    const spans: Record<string, { firstStartMs: number; lastEndMs: number }> = {};
    for (const entry of this.entries) {
      if (entry.startedAt < from || entry.startedAt > to) continue;
      const span = (spans[entry.kind] ??= { firstStartMs: Infinity, lastEndMs: -Infinity });
      span.firstStartMs = Math.min(span.firstStartMs, Math.round(entry.startedAt - from));
      span.lastEndMs = Math.max(span.lastEndMs, Math.round((entry.endedAt ?? entry.startedAt) - from));
    }
    return Object.fromEntries(Object.entries(spans).sort(([, a], [, b]) => a.firstStartMs - b.firstStartMs));
  }

  count(predicate: (entry: RequestEntry) => boolean, from = -Infinity, to = Infinity): number {
    return this.entries.filter((entry) => entry.startedAt >= from && entry.startedAt <= to && predicate(entry)).length;
  }

  private started(request: ClientRequest): void {
    const host = String(request.getHeader('host') ?? request.host ?? '');
    const port = Number(/:(\d+)$/.exec(host)?.[1] ?? (request.protocol === 'https:' ? 443 : 80));
    const service = this.options.ports.get(port) ?? 'other';
    const entry: RequestEntry = {
      service,
      kind: this.kindOf(service, request),
      path: request.path.split('?')[0] ?? '',
      startedAt: performance.now(),
      ...(service === 'table' ? { cpuAtStart: cpuMs() } : {}),
    };
    this.entries.push(entry);
    this.byRequest.set(request, entry);
  }

  private ended(entry: RequestEntry, status: number | undefined): void {
    if (entry.endedAt !== undefined) return;
    entry.endedAt = performance.now();
    if (status !== undefined) entry.status = status;
    this.onEnd?.(entry);
  }

  private kindOf(service: string, request: ClientRequest): string {
    const method = request.method.toUpperCase();
    const [path = '', query = ''] = request.path.split('?');
    const params = new URLSearchParams(query);
    const comp = params.get('comp');
    const restype = params.get('restype');
    switch (service) {
      case 'blob': {
        const account = path.split('/')[1] ?? '';
        const side = account === this.options.sourceAccount ? 'source' : 'destination';
        if (method === 'PUT' && request.getHeader('x-ms-copy-source') !== undefined) return 'blob PUT copy';
        if (restype === 'container') return `blob ${method} container${comp ? ` ${comp}` : ''}`;
        return `blob ${method}${comp ? ` ${comp}` : ''} ${side}`;
      }
      case 'queue':
        return `queue ${method}${/\/messages(\/|$)/.test(path) ? ' messages' : ''}`;
      case 'table':
        return `table ${method}`;
      default:
        return `${service} ${method}`;
    }
  }
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** The storage and identity ports named in the app settings (connection strings and endpoints). */
export function portsFromSettings(settings: Record<string, string | undefined>): Map<number, string> {
  const ports = new Map<number, string>();
  for (const value of Object.values(settings)) {
    for (const match of (value ?? '').matchAll(/(Blob|Queue|Table)Endpoint=https?:\/\/[^:/;]+:(\d+)/g)) ports.set(Number(match[2]), match[1]!.toLowerCase());
  }
  const identity = /^https?:\/\/[^:/]+:(\d+)/.exec(settings.IDENTITY_ENDPOINT ?? '');
  if (identity) ports.set(Number(identity[1]), 'identity');
  return ports;
}
