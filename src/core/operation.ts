/**
 * What a Graph partner-billing operation body means. The GET always answers 200; the state is
 * in `@odata.type` (runningOperation, exportSuccessOperation, failedOperation) and `status`.
 * The docs disagree on the success status (`succeeded` on the wire, `completed` on the resource
 * page) and on the manifest's shape (inline `resourceLocation` or a navigation link), and older
 * APIs wrote statuses in lower case, so this accepts every variant and discriminates on
 * `@odata.type` first. Anything it cannot place is `invalid`: a run fails instead of looping.
 * https://learn.microsoft.com/graph/api/partners-billing-operation-get
 */
import { describeJsonValue, isRecord } from './jsonValue';

export type ManifestLocation = { readonly kind: 'inline'; readonly manifest: unknown } | { readonly kind: 'link'; readonly url: string };

export type OperationState =
  | { readonly kind: 'pending'; readonly status: 'notStarted' | 'running' }
  | { readonly kind: 'succeeded'; readonly manifest: ManifestLocation }
  | { readonly kind: 'failed'; readonly code: string; readonly message: string }
  | { readonly kind: 'invalid'; readonly reason: string };

export function interpretOperation(body: unknown): OperationState {
  if (!isRecord(body)) {
    return { kind: 'invalid', reason: `operation body is ${describeJsonValue(body)}: expected a JSON object` };
  }
  const odataType = typeof body['@odata.type'] === 'string' ? body['@odata.type'] : undefined;
  const status = typeof body.status === 'string' ? body.status : undefined;

  switch (kindFromType(odataType) ?? kindFromStatus(status)) {
    case 'pending':
      return { kind: 'pending', status: status?.toLowerCase() === 'notstarted' ? 'notStarted' : 'running' };
    case 'succeeded':
      return succeeded(body);
    case 'failed':
      return failed(body);
    case undefined:
      return {
        kind: 'invalid',
        reason:
          `operation has unknown status '${status ?? '(none)'}' and @odata.type '${odataType ?? '(none)'}': ` +
          'expected notStarted, running, succeeded (or completed) or failed',
      };
  }
}

type Kind = 'pending' | 'succeeded' | 'failed';

function kindFromType(odataType: string | undefined): Kind | undefined {
  const name = odataType?.toLowerCase().replace(/^#?microsoft\.graph\.partners\.billing\./, '');
  if (name === 'runningoperation') return 'pending';
  if (name === 'exportsuccessoperation') return 'succeeded';
  if (name === 'failedoperation') return 'failed';
  return undefined;
}

function kindFromStatus(status: string | undefined): Kind | undefined {
  switch (status?.toLowerCase()) {
    case 'notstarted':
    case 'running':
      return 'pending';
    case 'succeeded':
    case 'completed':
      return 'succeeded';
    case 'failed':
      return 'failed';
    default:
      return undefined;
  }
}

function succeeded(body: Record<string, unknown>): OperationState {
  const location = body.resourceLocation;
  if (isRecord(location)) return { kind: 'succeeded', manifest: { kind: 'inline', manifest: location } };
  const link = body['resourceLocation@odata.navigationLink'] ?? location;
  if (typeof link === 'string' && link.trim() !== '') {
    return { kind: 'succeeded', manifest: { kind: 'link', url: link.trim() } };
  }
  return {
    kind: 'invalid',
    reason: 'operation succeeded but has neither a resourceLocation object nor a resourceLocation@odata.navigationLink',
  };
}

function failed(body: Record<string, unknown>): OperationState {
  const error = isRecord(body.error) ? body.error : {};
  const code = typeof error.code === 'string' || typeof error.code === 'number' ? String(error.code) : 'unknown';
  const message =
    typeof error.message === 'string' && error.message.trim() !== '' ? error.message : 'Graph reported the export failed without an error message';
  return { kind: 'failed', code, message };
}
