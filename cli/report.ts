/** The CLI's report: a landed run's per-customer totals as a table (numbers right-aligned, exact). */
import type { PublicCustomerTotal } from '../src/core/publicManifest';
import { subjectOf, type Run } from '../src/core/run';
import type { RunData } from '../src/steps/runData';
import { formatColumns } from './output';

const CUSTOMER_FIELDS = new Set(['customerId', 'customerName', 'currency', 'pricingCurrency', 'rowCount']);

/** The summed columns of these totals, in their order (billingPreTaxTotal, ... or subtotal, ...). */
function summedColumns(totals: readonly PublicCustomerTotal[]): string[] {
  return Object.keys(totals[0] ?? {}).filter((name) => !CUSTOMER_FIELDS.has(name));
}

export function formatTotalsTable(run: Run, data: RunData): string {
  const customers = new Set(data.totals.map((total) => total.customerId)).size;
  const title = `Run ${run.runId} (${run.kind}, ${subjectOf(run)}, ${run.attributeSet}): ${data.rowCount} rows, ${customers} customers, ${data.check.problems} problems`;
  const summed = summedColumns(data.totals);
  // Usage totals say the pricing currency too: PricingPreTaxTotal is in it.
  const pricing = data.totals.some((total) => total.pricingCurrency !== undefined);
  const header = ['customer', 'customer id', 'currency', ...(pricing ? ['pricing currency'] : []), 'rows', ...summed];
  const rows = data.totals.map((total) => [
    total.customerName,
    total.customerId,
    total.currency,
    ...(pricing ? [total.pricingCurrency ?? ''] : []),
    String(total.rowCount),
    ...summed.map((name) => String(total[name] ?? '')),
  ]);
  // rows, then the summed columns: numbers, right-aligned
  const firstNumber = header.indexOf('rows');
  const table = formatColumns(header, rows, { rightAligned: (column) => column >= firstNumber });
  const examples = data.check.examples.map((example) => `  ${example.file} line ${example.line}: ${example.problem}`);
  return [title, '', table, ...(examples.length ? ['', 'Problems (first few):', ...examples] : [])].join('\n');
}
