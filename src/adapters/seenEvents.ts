/**
 * Which Partner Center events have been acted on, so a redelivery or a replayed event starts
 * nothing new. Rows live in the ledger's table under their own partition (the ledger reads only
 * its 'run' and 'key' partitions): PartitionKey 'partner-center-event', RowKey the SHA-256 of the
 * event's identity (invoice and change time), with the invoice id and times for an operator.
 *
 * A delivery first claims the event (insert; a conflict means another delivery got there first),
 * starts the exports, then marks it started. A claim whose delivery crashed before marking goes
 * stale and is taken over by the next delivery, so an event is never lost to a crash.
 */
import type { TableClient } from '@azure/data-tables';
import { createHash } from 'node:crypto';
import { callDeadline } from './deadline';
import { classified, failure } from './storageError';

const PARTITION = 'partner-center-event';
/** Longer than starting the exports ever takes: a claim this old belongs to a delivery that died. */
export const STALE_CLAIM_MS = 10 * 60_000;

export type ClaimOutcome =
  /** This delivery owns the event: start it, then `markStarted` (or `release` on failure). */
  | 'claimed'
  /** The event was started before: nothing to do. */
  | 'duplicate'
  /** Another delivery is starting it right now. */
  | 'inProgress';

export interface SeenEvents {
  claim(identity: string, details: { readonly invoiceId: string; readonly eventName: string }, now: Date): Promise<ClaimOutcome>;
  markStarted(identity: string, now: Date): Promise<void>;
  /** Gives the claim up, so Partner Center's retry can start the event. */
  release(identity: string): Promise<void>;
}

interface EventRow {
  state: 'claimed' | 'started';
  invoiceId: string;
  eventName: string;
  claimedAt: string;
  startedAt?: string;
}

export function createSeenEvents(table: TableClient, options: { readonly callTimeoutMs?: number } = {}): SeenEvents {
  const deadline = () => callDeadline(options.callTimeoutMs);
  const rowKey = (identity: string) => createHash('sha256').update(identity).digest('hex');

  return {
    async claim(identity, details, now) {
      const row = {
        partitionKey: PARTITION,
        rowKey: rowKey(identity),
        state: 'claimed',
        invoiceId: details.invoiceId,
        eventName: details.eventName,
        claimedAt: now.toISOString(),
      };
      try {
        await table.createEntity(row, deadline());
        return 'claimed';
      } catch (thrown) {
        const { error, is } = failure(thrown, 409);
        if (!is) throw error;
      }
      const existing = await table.getEntity<EventRow>(PARTITION, row.rowKey, deadline()).catch((thrown: unknown) => {
        const { error, is } = failure(thrown, 404);
        if (is) return undefined; // released in between: the retry will claim it
        throw error;
      });
      if (!existing) return 'inProgress';
      if (existing.state === 'started') return 'duplicate';
      if (now.getTime() - Date.parse(existing.claimedAt) < STALE_CLAIM_MS) return 'inProgress';
      try {
        await table.updateEntity(row, 'Replace', {
          etag: existing.etag,
          ...deadline(),
        });
        return 'claimed';
      } catch (thrown) {
        const { error, is } = failure(thrown, 404, 412);
        if (is) return 'inProgress'; // another delivery took it over first
        throw error;
      }
    },

    async markStarted(identity, now) {
      await classified(() =>
        table.updateEntity(
          {
            partitionKey: PARTITION,
            rowKey: rowKey(identity),
            state: 'started',
            startedAt: now.toISOString(),
          },
          'Merge',
          deadline(),
        ),
      );
    },

    async release(identity) {
      await table.deleteEntity(PARTITION, rowKey(identity), deadline()).catch((thrown: unknown) => {
        const { error, is } = failure(thrown, 404);
        if (!is) throw error;
      });
    },
  };
}
