/**
 * Faults the Partner Billing emulator can inject, per endpoint and per request: what the real
 * Graph and its storage do on a bad day (throttling, outages, resets, slow answers, malformed
 * bodies, unknown states, operations that expire, SAS tokens that are already stale, manifests
 * that contradict themselves or try to escape their folder). Rules are consumed in order; a
 * seeded random makes probabilistic rules reproducible.
 */
import { seededRandom, type Random } from './deterministic';

export type GraphEndpoint = 'export' | 'operation' | 'manifest';

export type ManifestDefect =
  /** blobCount one more than blobs lists. */
  | 'blobCountMismatch'
  /** An extra listed file that does not exist at the source (blobCount agrees). */
  | 'missingBlob'
  /** A blob name that climbs out of its folder. */
  | 'escapingName'
  /** A blob name that is an absolute URL. */
  | 'absoluteUrlName'
  /** A blob name carrying a query string. */
  | 'queryName';

export type GraphFault =
  /** A Graph error answer; Retry-After in seconds, or as an HTTP-date when `retryAfterAsDate`. */
  | { readonly kind: 'status'; readonly status: number; readonly retryAfterSeconds?: number; readonly retryAfterAsDate?: boolean }
  /** The connection is dropped without an answer. */
  | { readonly kind: 'reset' }
  /**
   * The request is carried out, then the connection drops before the answer: on the export POST,
   * Graph has started an export the caller never hears of (an orphaned operation).
   */
  | { readonly kind: 'lostAnswer' }
  /** The answer comes after `ms` (longer than a client's timeout, to test it). */
  | { readonly kind: 'delay'; readonly ms: number }
  /** 200 with a body cut off mid-JSON. */
  | { readonly kind: 'malformedJson' }
  /** The status and headers of a normal answer, then a body that stalls for `ms` before the connection drops. */
  | { readonly kind: 'stalledBody'; readonly ms: number }
  /** An operation in a status no documentation lists. */
  | { readonly kind: 'unknownStatus'; readonly status?: string }
  /** A redirect, typically to another origin (which must not receive the token). */
  | { readonly kind: 'redirect'; readonly location: string }
  /** The manifest's SAS has already expired (the next answer mints a fresh one). */
  | { readonly kind: 'expiredSas' }
  /** A manifest that is wrong in the given way. */
  | { readonly kind: 'manifest'; readonly defect: ManifestDefect };

export interface GraphFaultRule {
  /** Which endpoint; any when left out. */
  readonly endpoint?: GraphEndpoint;
  readonly fault: GraphFault;
  /** Let this many matching requests through first ("after a while"). @default 0 */
  readonly after?: number;
  /** Apply to this many matching requests, then retire. @default every one */
  readonly times?: number;
  /** Apply with this probability per matching request (seeded). @default 1 */
  readonly probability?: number;
}

export interface InjectedGraphFault {
  readonly endpoint: GraphEndpoint;
  readonly kind: GraphFault['kind'];
  readonly detail?: string;
}

interface ActiveRule {
  readonly rule: GraphFaultRule;
  seen: number;
  applied: number;
}

export class GraphFaults {
  private readonly rules: ActiveRule[] = [];
  private readonly log: InjectedGraphFault[] = [];
  private readonly random: Random;

  constructor(seed = 1) {
    this.random = seededRandom(seed);
  }

  /** Adds a rule; returns a function that removes it. */
  add(rule: GraphFaultRule): () => void {
    const active: ActiveRule = { rule, seen: 0, applied: 0 };
    this.rules.push(active);
    return () => {
      const index = this.rules.indexOf(active);
      if (index >= 0) this.rules.splice(index, 1);
    };
  }

  clear(): void {
    this.rules.length = 0;
  }

  /** The fault for this request, if a rule claims it (the first matching rule wins). */
  take(endpoint: GraphEndpoint): GraphFault | undefined {
    for (const active of this.rules) {
      const { rule } = active;
      if (rule.endpoint && rule.endpoint !== endpoint) continue;
      active.seen++;
      if (active.seen <= (rule.after ?? 0)) continue;
      if (rule.times !== undefined && active.applied >= rule.times) continue;
      if (rule.probability !== undefined && this.random() >= rule.probability) continue;
      active.applied++;
      this.log.push({ endpoint, kind: rule.fault.kind, ...detailOf(rule.fault) });
      return rule.fault;
    }
    return undefined;
  }

  injected(): InjectedGraphFault[] {
    return this.log.map((entry) => ({ ...entry }));
  }
}

function detailOf(fault: GraphFault): { detail?: string } {
  switch (fault.kind) {
    case 'status':
      return { detail: String(fault.status) };
    case 'manifest':
      return { detail: fault.defect };
    case 'unknownStatus':
      return { detail: fault.status ?? 'paused' };
    default:
      return {};
  }
}

/** Applies a manifest defect to a documented manifest body. */
export function withDefect(manifest: Record<string, unknown>, defect: ManifestDefect): Record<string, unknown> {
  const blobs = [...(manifest.blobs as Array<{ name: string; partitionValue: string }>)];
  const first = blobs[0]?.name ?? 'part-00000.c000.json.gz';
  switch (defect) {
    case 'blobCountMismatch':
      return { ...manifest, blobCount: blobs.length + 1 };
    case 'missingBlob':
      blobs.push({ name: 'part-99999-00000000-0000-0000-0000-000000000000.c000.json.gz', partitionValue: 'default' });
      return { ...manifest, blobs, blobCount: blobs.length };
    case 'escapingName':
      blobs[0] = { name: `../../escape/${first}`, partitionValue: 'default' };
      return { ...manifest, blobs };
    case 'absoluteUrlName':
      blobs[0] = { name: `https://attacker.example/${first}`, partitionValue: 'default' };
      return { ...manifest, blobs };
    case 'queryName':
      blobs[0] = { name: `${first}?comp=metadata`, partitionValue: 'default' };
      return { ...manifest, blobs };
  }
}
