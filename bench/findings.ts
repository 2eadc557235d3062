/**
 * Plain-language observations computed from a figure's own numbers, printed under the table
 * and stored with the figure: where a gap to the floor comes from.
 */
import type { FigureResult, Measurement } from './results';

type Details = Record<string, unknown>;

const fixed = (value: number, digits = 2): string => (Number.isFinite(value) ? value.toFixed(digits) : '–');

function row(figure: FigureResult, starts: string): Measurement | undefined {
  return figure.rows.find((candidate) => candidate.label.startsWith(starts));
}

function landingFindings(figure: FigureResult): string[] {
  // Time to data has these rows per kind, each prefixed with it; the first kind's are read here
  // (its first row, as scale's: the raw files, every copy done).
  const time = figure.rows[0];
  const requests = figure.rows.find((candidate) => candidate.label.includes('blob requests per file'));
  const cpu = figure.rows.find((candidate) => candidate.label.includes('app CPU per file'));
  const details = figure.details as Details & { landingRequestsOfMedianRun?: Record<string, number>; landingLatencyMsOfMedianRun?: Record<string, number> };
  const files = Number((figure.params as Details).fileCount);
  const blobKinds = Object.entries(details.landingRequestsOfMedianRun ?? {}).filter(([kind]) => kind.startsWith('blob '));
  const latency = details.landingLatencyMsOfMedianRun ?? {};
  const findings: string[] = [];
  if (time && requests) {
    const perKind = blobKinds
      .map(
        ([kind, count]) =>
          `${kind.slice(5)} ${count >= files ? `${fixed(count / files)}/file` : `${count}×`}${latency[kind] === undefined ? '' : ` (${fixed(latency[kind], 0)} ms)`}`,
      )
      .join(', ');
    findings.push(
      `The app took ${fixed(time.value)} s (${time.label}) against ${fixed(time.floor)} s for the bare copies (${fixed(time.ratio ?? Number.NaN)}×), with ${fixed(requests.value)} blob requests per file while landing where the copy alone is 1: ${perKind} (median latency under load in brackets).`,
    );
  }
  if (cpu)
    findings.push(
      `The app spends ${fixed(cpu.value, 1)} ms of CPU per file while landing, against ${fixed(cpu.floor, 1)} ms per bare copy: the Azure SDK's cost per request, times the requests.`,
    );
  return findings;
}

export function withFindings(figure: FigureResult): FigureResult {
  const findings = [...figure.findings];
  switch (figure.id) {
    case 'timeToData':
      findings.push(...landingFindings(figure));
      {
        const bytes = Number((figure.details as Details).bytesPerExport);
        const floor = figure.rows[0]?.floor ?? Number.NaN;
        findings.push(
          `Azurite copies a blob from a SAS URL in its own single thread (after checking the source with a HEAD request): the floor moves ${fixed(bytes / 1024 ** 2 / floor, 0)} MiB/s whatever the concurrency. Azure copies server side on its own capacity; the figure measures the app's overhead on top of the copies, not Azure's copy speed.`,
        );
      }
      break;
    case 'memory': {
      const [, largeBySmall, largeByMedium] = figure.rows;
      if (largeBySmall && largeByMedium)
        findings.push(
          `large / small = ${fixed(largeBySmall.ratio ?? Number.NaN)}, large / medium = ${fixed(largeByMedium.ratio ?? Number.NaN)}: the copies are server side and the check streams each file holding at most a Parquet row group, so the peak grows until the files outgrow a few row groups, then no more.`,
        );
      break;
    }
    case 'coldStart': {
      const load = figure.rows.find((candidate) => candidate.label.startsWith('bundled') && candidate.label.includes('require'));
      const whole = figure.rows.find((candidate) => candidate.label.startsWith('bundled') && candidate.label.includes('spawn'));
      const versus = row(figure, 'unbundled vs bundled');
      if (load && whole && versus) {
        findings.push(
          `The bundle's entry point loads and registers the functions in ${fixed(load.value, 0)} ms (${fixed(load.ratio ?? Number.NaN)}× a bare Node.js start of ${fixed(load.floor, 0)} ms; the tsc output takes ${fixed(versus.ratio ?? Number.NaN)}× as long); the whole process is ready ${fixed(whole.value, 0)} ms after spawn, ${fixed(whole.ratio ?? Number.NaN)}× bare Node.js. ` +
            `What it defers is paid once by the first invocation: ${fixed(Number((figure.details as Details).clientsChunkImportMs), 0)} ms to load the SDK clients chunk, and ${fixed(Number((figure.details as Details).telemetryChunkImportMs), 0)} ms for the telemetry chunk when Application Insights is configured.`,
        );
      }
      break;
    }
    case 'polling': {
      const cases = ((figure.details as Details).cases ?? []) as Array<{ overheadSeconds: number; idealGets: number[]; measuredGets: number[] }>;
      const overheads = cases.map((entry) => entry.overheadSeconds);
      const sameGets = cases.every((entry) => entry.measuredGets.every((gets, index) => gets === entry.idealGets[index]));
      if (overheads.length > 0) {
        findings.push(
          `${sameGets ? 'Every run made exactly the operation GETs the policy schedules' : 'Some runs made a different number of operation GETs than the policy schedules'}, Retry-After included; ` +
            `it noticed completion ${fixed(Math.min(...overheads))} to ${fixed(Math.max(...overheads))} s later than an ideal poller would (median per case). ` +
            `That is the queue between polls: a delayed message becomes visible, the worker picks it up within its receive interval (${String(((figure.params as Details).host as { idlePollMs?: number } | undefined)?.idlePollMs ?? '?')} ms here; the Functions host backs off up to host.json's maxPollingInterval), the poll runs, and the next delay counts from then.`,
        );
      }
      break;
    }
    case 'scale': {
      findings.push(...landingFindings(figure));
      const fanOut = (figure.details as Details).fanOut as { invocationSeconds: number; functionTimeoutSeconds: number; shareOfTimeout: number } | undefined;
      const files = Number((figure.params as Details).fileCount);
      const cpu = row(figure, 'app CPU per file');
      const requests = row(figure, 'blob requests per file');
      if (fanOut && cpu && requests) {
        // A projection, not a measurement: Azure's own latency per request, 16 requests in flight.
        const azureSeconds = (latencyMs: number) => (10_000 * requests.value * latencyMs) / 1000 / 16;
        findings.push(
          `One invocation landed ${files.toLocaleString('en-US')} files in ${fixed(fanOut.invocationSeconds, 1)} s, ${fixed(fanOut.shareOfTimeout * 100, 1)} % of host.json's functionTimeout (${fanOut.functionTimeoutSeconds} s). ` +
            `For 10,000 files: ${fixed((cpu.value * 10_000) / 1000, 0)} s of the app's CPU and ${Math.round(requests.value * 10_000).toLocaleString('en-US')} storage requests, ${fixed(azureSeconds(10), 0)}-${fixed(azureSeconds(50), 0)} s at 10-50 ms per request with 16 in flight (an estimate, not a measurement): one invocation suffices; only Azure's own asynchronous copying, if it outlasted the timeout, would call for continuing in a later message.`,
        );
      }
      break;
    }
  }
  return { ...figure, findings };
}
