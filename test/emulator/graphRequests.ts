/** Plain-fetch calls against the billing emulator, as a Graph client would make them. */
import type { BillingEmulator } from '../../emulator/billingEmulator';

export const EXPORT_PATH = '/reports/partners/billing/usage/unbilled/export';

export interface GraphAnswer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

export function postExport(billing: BillingEmulator, token: string | undefined, body: unknown, path = EXPORT_PATH): Promise<Response> {
  return fetch(`${billing.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export async function getJson(url: string, token: string): Promise<GraphAnswer> {
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

/** POSTs an export and returns its operation URL, failing loudly on anything but 202 + Location. */
export async function startExport(billing: BillingEmulator, token: string, body: unknown = { currencyCode: 'EUR', billingPeriod: 'current' }): Promise<string> {
  const response = await postExport(billing, token, body);
  const location = response.headers.get('location');
  if (response.status !== 202 || !location) throw new Error(`expected 202 with Location, got ${response.status}: ${await response.text()}`);
  return location;
}

/** Polls the operation until it is no longer notStarted/running; returns every answer, the final one last. */
export async function pollUntilFinished(operationUrl: string, token: string, maxPolls = 400): Promise<GraphAnswer[]> {
  const answers: GraphAnswer[] = [];
  for (let poll = 0; poll < maxPolls; poll++) {
    const answer = await getJson(operationUrl, token);
    answers.push(answer);
    if (answer.body.status !== 'notStarted' && answer.body.status !== 'running') return answers;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`operation still pending after ${maxPolls} polls`);
}

export interface ManifestBody {
  id: string;
  eTag: string;
  rootDirectory: string;
  sasToken: string;
  blobCount: number;
  blobs: Array<{ name: string; partitionValue: string }>;
  [property: string]: unknown;
}

/** Runs an export to completion and returns its manifest (following the navigation link when there is one). */
export async function exportManifest(billing: BillingEmulator, token: string, body?: unknown): Promise<ManifestBody> {
  const answers = await pollUntilFinished(await startExport(billing, token, body), token);
  const final = answers.at(-1)!.body;
  const link = final['resourceLocation@odata.navigationLink'];
  if (typeof link === 'string') return (await getJson(link, token)).body as ManifestBody;
  return final.resourceLocation as ManifestBody;
}

export function fileUrl(manifest: ManifestBody, name: string): string {
  return `${manifest.rootDirectory}/${name}?${manifest.sasToken}`;
}

export async function download(url: string): Promise<Buffer> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`GET file answered ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}
