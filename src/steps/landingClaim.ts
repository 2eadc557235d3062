/**
 * A landing's claim on its run: another delivery of the same step stands down while the claim is
 * fresh, and takes over a stale one. The landing renews it in the background while it runs.
 */
import { LedgerConflictError } from '../errors';
import type { Manifest } from '../core/manifest';
import { destinationFolder } from '../core/naming';
import { LANDING_CLAIM_SECONDS, toCopying, withClaimRenewed, type Run } from '../core/run';
import type { StoredRun } from '../adapters/ledger';
import type { Deps } from '../deps';

/** A landing's claim on its run, renewed in the background until the landing ends it. */
export interface HeldClaim {
  /** The run's row as this landing last wrote it. */
  current(): StoredRun;
  /** Writes the row (after any renewal in flight), conditional on the landing's last write. */
  update(change: (run: Run) => Run): Promise<StoredRun>;
  /** Stops renewing; the row as last written, or LedgerConflictError if another landing took the run over. */
  end(): Promise<StoredRun>;
  /**
   * Stops renewing and proves the claim once more with one conditional write, for the step that
   * must not run on a lapsed claim (manifest.json): the row as written, LedgerConflictError if
   * another landing took the run over, or the ledger's own error if it could not be written (a
   * renewal that failed in the background says nothing; this landing cannot know it still holds the run).
   */
  confirm(): Promise<StoredRun>;
}

/** How long a claim lasts: LANDING_CLAIM_SECONDS unless the composition root chose another. */
function claimSeconds(deps: Deps): number {
  return deps.landingClaimSeconds ?? LANDING_CLAIM_SECONDS;
}

/** Until when a claim taken or renewed now holds (a landing's, or a data check's finisher's). */
export function claimUntil(deps: Deps): Date {
  return new Date(deps.now().getTime() + claimSeconds(deps) * 1000);
}

/** The run claimed by landing `claimId` for the files of `manifest`: a new eTag is a new folder. */
export function claimedRun(run: Run, manifest: Manifest, claimId: string, deps: Deps): Run {
  const landing = {
    manifestETag: manifest.eTag,
    partnerTenantId: manifest.partnerTenantId,
    blobCount: manifest.blobCount,
    destinationContainer: deps.destination.containerName,
    destinationFolder: destinationFolder(run, manifest.eTag),
  };
  return toCopying(run, landing, { id: claimId, until: claimUntil(deps) }, deps.now());
}

/**
 * Claims the run, conditional on the row as read: of two deliveries that got this far, one
 * claims, the other gets LedgerConflictError and stands down. Then renews the claim four times
 * per lease: a renewal that fails transiently has three more chances. A renewal that failed is
 * not a lost claim, nor a kept one: what must not run on a lapsed claim asks confirm() first.
 */
export async function holdClaim(stored: StoredRun, claimed: Run, deps: Deps): Promise<HeldClaim> {
  let current = await deps.ledger.saveRun(claimed, stored.etag);
  let lost: LedgerConflictError | undefined;
  let writes: Promise<unknown> = Promise.resolve();
  const update = (change: (run: Run) => Run): Promise<StoredRun> => {
    const write = writes.then(async () => {
      if (lost) throw lost;
      current = await deps.ledger.saveRun(change(current.run), current.etag);
      return current;
    });
    writes = write.catch(() => undefined);
    return write;
  };
  let renewing = false;
  const timer = setInterval(
    () => {
      // One renewal at a time: while the ledger is slow (the SDK retrying), ticks do not queue up
      // writes that the landing's end would have to wait through.
      if (renewing) return;
      renewing = true;
      update((run) => withClaimRenewed(run, claimUntil(deps)))
        .catch((thrown: unknown) => {
          // Another landing took over a claim this one let run out: this one must not finish.
          if (thrown instanceof LedgerConflictError) lost = thrown;
          // Anything else is transient: the next renewal tries again.
        })
        .finally(() => {
          renewing = false;
        });
    },
    (claimSeconds(deps) * 1000) / 4,
  );
  timer.unref();
  return {
    current: () => current,
    update,
    async end() {
      clearInterval(timer);
      await writes;
      if (lost) throw lost;
      return current;
    },
    async confirm() {
      clearInterval(timer);
      return update((run) => withClaimRenewed(run, claimUntil(deps)));
    },
  };
}
