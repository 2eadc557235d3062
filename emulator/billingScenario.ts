/**
 * How the billing emulator behaves for the exports POSTed while a scenario is in force: how long
 * the operation stays pending, how it ends, how the manifest is delivered and what the files hold.
 */
import { NO_DATA_AVAILABLE } from './exportRequest';

export interface BillingScenario {
  /** Pending answers reported as `notStarted` before they turn to `running` (counted within runningPolls). @default 1 */
  notStartedPolls: number;
  /** Operation GETs answered as not finished (notStarted or running) before the outcome is reported. @default 2 */
  runningPolls: number;
  /** Seconds after the POST (by the emulator's clock) before the outcome can be reported. @default 0 */
  readyAfterSeconds: number;
  /** Retry-After header on pending answers, in seconds; null omits the header. @default 1 */
  retryAfterSeconds: number | null;
  /** 'failed': every export of an invoice or month Graph has ends with `failure`, and produces no files. @default 'succeeded' */
  outcome: 'succeeded' | 'failed';
  /** The failedOperation error. @default the documented { code: '5000', message: 'No data available' } */
  failure: { code: string; message: string };
  /**
   * Billing currencies the partner has no customers in: an unbilled export in one of them fails
   * with the documented { code: '5000', message: 'No data available' }. Upper-case ISO 4217 codes.
   * @default []
   */
  noDataCurrencies: readonly string[];
  /**
   * How a billed export of an invoice Graph cannot export (unknown, or older than the catalogue)
   * is answered; the reference (section 8) says it is not documented. 'failedOperation': 202, then
   * a failedOperation with the reason; 'badRequest': a synchronous 400 BadRequest, no operation.
   * @default 'failedOperation'
   */
  invoiceErrors: 'failedOperation' | 'badRequest';
  /**
   * Whether the re-issued invoice (REISSUED_INVOICE_ID, G000000002) has had its re-issue: false
   * exports its first version, true its second (a new eTag and InvoiceVersion folder, and a
   * customerCredit line in its reconciliation). A test
   * flips it with setScenario({ invoiceReissued: true }) between two exports.
   * @default false
   */
  invoiceReissued: boolean;
  /** `status` of the success answer: the docs show 'succeeded', the resource page says 'completed'. @default 'succeeded' */
  successStatus: string;
  /**
   * 'link': resourceLocation@odata.navigationLink to /manifests/{id}, as documented;
   * 'inline': the manifest object as resourceLocation, as Microsoft's sample and the SDKs consume it.
   * @default 'link'
   */
  manifestDelivery: 'link' | 'inline';
  /**
   * Files per export. A reconciliation export spreads its line items over this many files (fewer
   * if it has fewer line items). @default 3
   */
  fileCount: number;
  /**
   * Usage rows per file; a reconciliation export holds the line items of fileCount x rowsPerFile
   * usage rows (they sum the month's usage per subscription and meter, plus licences). @default 200
   */
  rowsPerFile: number;
  /**
   * About how many bytes each file should have, for benchmarks; null leaves every file at its
   * natural size (its rowsPerFile rows). When set, a file holds its own rowsPerFile rows and is then
   * filled up to about this size with one export-wide block of further rows, repeated: every repeat
   * is one more gzip member, so the file still decompresses to valid JSON lines (but the filler rows
   * repeat, so its totals mean nothing). Cheap at any size; deterministic like everything else.
   * @default null
   */
  fileSizeBytes: number | null;
  /** Seed of the synthetic usage rows, file names and eTag. @default 1 */
  seed: number;
  /** Lifetime of each manifest's SAS token, from the emulator's clock. @default 3600 */
  sasLifetimeSeconds: number;
}

/** The largest fileSizeBytes: 4 GiB, under the 5000 MiB that one Put Blob accepts. */
export const MAX_FILE_SIZE_BYTES = 4 * 1024 ** 3;

export const DEFAULT_SCENARIO: Readonly<BillingScenario> = Object.freeze({
  notStartedPolls: 1,
  runningPolls: 2,
  readyAfterSeconds: 0,
  retryAfterSeconds: 1,
  outcome: 'succeeded',
  failure: NO_DATA_AVAILABLE,
  noDataCurrencies: Object.freeze([]),
  invoiceErrors: 'failedOperation',
  invoiceReissued: false,
  successStatus: 'succeeded',
  manifestDelivery: 'link',
  fileCount: 3,
  rowsPerFile: 200,
  fileSizeBytes: null,
  seed: 1,
  sasLifetimeSeconds: 3600,
});

/** The defaults with `overrides` on top, checked; throws a RangeError listing every invalid value. */
export function resolveScenario(overrides: Partial<BillingScenario> = {}): BillingScenario {
  const scenario: BillingScenario = {
    ...DEFAULT_SCENARIO,
    ...overrides,
    failure: { ...(overrides.failure ?? DEFAULT_SCENARIO.failure) },
    noDataCurrencies: [...(overrides.noDataCurrencies ?? DEFAULT_SCENARIO.noDataCurrencies)],
  };
  const problems: string[] = [];
  const wholeNumber = (name: keyof BillingScenario, value: number, minimum: number): void => {
    if (!Number.isInteger(value) || value < minimum) problems.push(`${name} is ${value}: expected a whole number ≥ ${minimum}`);
  };

  wholeNumber('notStartedPolls', scenario.notStartedPolls, 0);
  wholeNumber('runningPolls', scenario.runningPolls, 0);
  if (!Number.isFinite(scenario.readyAfterSeconds) || scenario.readyAfterSeconds < 0) {
    problems.push(`readyAfterSeconds is ${scenario.readyAfterSeconds}: expected a number of seconds ≥ 0`);
  }
  if (scenario.retryAfterSeconds !== null) wholeNumber('retryAfterSeconds', scenario.retryAfterSeconds, 0);
  if (scenario.outcome !== 'succeeded' && scenario.outcome !== 'failed') {
    problems.push(`outcome is '${String(scenario.outcome)}': expected 'succeeded' or 'failed'`);
  }
  if (!scenario.failure.code || !scenario.failure.message) problems.push('failure needs a non-empty code and message');
  const badCurrencies = scenario.noDataCurrencies.filter((currency) => !/^[A-Z]{3}$/.test(currency));
  if (badCurrencies.length > 0)
    problems.push(`noDataCurrencies has ${JSON.stringify(badCurrencies)}: expected upper-case 3-letter ISO 4217 codes such as "NOK"`);
  if (scenario.invoiceErrors !== 'failedOperation' && scenario.invoiceErrors !== 'badRequest') {
    problems.push(`invoiceErrors is '${String(scenario.invoiceErrors)}': expected 'failedOperation' or 'badRequest'`);
  }
  if (typeof scenario.invoiceReissued !== 'boolean') problems.push(`invoiceReissued is ${JSON.stringify(scenario.invoiceReissued)}: expected true or false`);
  if (!scenario.successStatus) problems.push('successStatus is empty: expected a status such as succeeded');
  if (scenario.manifestDelivery !== 'link' && scenario.manifestDelivery !== 'inline') {
    problems.push(`manifestDelivery is '${String(scenario.manifestDelivery)}': expected 'link' or 'inline'`);
  }
  wholeNumber('fileCount', scenario.fileCount, 1);
  wholeNumber('rowsPerFile', scenario.rowsPerFile, 1);
  if (
    scenario.fileSizeBytes !== null &&
    (!Number.isInteger(scenario.fileSizeBytes) || scenario.fileSizeBytes < 1 || scenario.fileSizeBytes > MAX_FILE_SIZE_BYTES)
  ) {
    problems.push(`fileSizeBytes is ${scenario.fileSizeBytes}: expected null or a whole number of bytes from 1 to ${MAX_FILE_SIZE_BYTES}`);
  }
  wholeNumber('seed', scenario.seed, 0);
  wholeNumber('sasLifetimeSeconds', scenario.sasLifetimeSeconds, 1);

  if (problems.length > 0) throw new RangeError(`Invalid billing scenario: ${problems.join('; ')}`);
  return scenario;
}
