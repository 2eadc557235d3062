/** The emulator rows the data check tests read (add attributeSet and count or usageRowCount): October 2026, EUR, one partner tenant. */
const TENANT = '0e195b37-4574-4539-bc42-0e539b9684c0';
export const rowBase = { seed: 11, billingMonth: '2026-10', currency: 'EUR', partnerTenantId: TENANT } as const;
