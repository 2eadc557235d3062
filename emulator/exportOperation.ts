/**
 * The life of one export operation as its poller sees it: pending (notStarted, then running) until
 * enough time has passed, enough polls were answered and the files are uploaded; then the outcome.
 * https://learn.microsoft.com/graph/api/partners-billing-operation-get
 */
import { randomUUID } from 'node:crypto';
import type { BillingScenario } from './billingScenario';
import type { ExportPlan } from './exportFiles';

/** A failedOperation's error: Graph's publicError (code, message, and the parameter it is about). */
export interface OperationError {
  code: string;
  message: string;
  target?: string;
}

export type OperationState =
  | { kind: 'pending'; status: 'notStarted' | 'running' }
  | { kind: 'succeeded'; status: string; plan: ExportPlan; uploadedAt: Date }
  | { kind: 'failed'; status: 'failed'; error: OperationError };

/** What the export comes to: files (being uploaded), or a failure reported once the operation is done. */
export type ExportProduct = { plan: ExportPlan } | { failure: OperationError };

type Files =
  | { state: 'notProduced'; failure: OperationError }
  | { state: 'uploading'; plan: ExportPlan }
  | { state: 'uploaded'; plan: ExportPlan; at: Date }
  | { state: 'uploadFailed'; error: Error };

export class ExportOperation {
  readonly id = randomUUID();
  readonly manifestId = randomUUID();
  private pendingAnswers = 0;
  private lastStatus: string = 'notStarted';
  private lastAction: Date;
  private files: Files;

  /**
   * `scenario` is fixed at creation: later scenario changes affect only later exports.
   * `product` is the files being uploaded, or the failure the operation ends with (no files).
   */
  constructor(
    readonly createdAt: Date,
    readonly scenario: BillingScenario,
    product: ExportProduct,
  ) {
    this.lastAction = createdAt;
    this.files = 'plan' in product ? { state: 'uploading', plan: product.plan } : { state: 'notProduced', failure: product.failure };
  }

  get lastActionAt(): Date {
    return this.lastAction;
  }

  filesUploaded(at: Date): void {
    if (this.files.state === 'uploading') this.files = { state: 'uploaded', plan: this.files.plan, at };
  }

  uploadFailed(error: Error): void {
    this.files = { state: 'uploadFailed', error };
  }

  /** Answers one operation GET; pending answers count towards scenario.runningPolls. */
  poll(now: Date): OperationState {
    const state = this.evaluate(now);
    if (state.kind === 'pending') this.pendingAnswers++;
    if (state.status !== this.lastStatus) {
      this.lastStatus = state.status;
      this.lastAction = now;
    }
    return state;
  }

  private evaluate(now: Date): OperationState {
    const { readyAfterSeconds, runningPolls, notStartedPolls, successStatus } = this.scenario;
    const elapsedMs = now.getTime() - this.createdAt.getTime();
    const waitedEnough = elapsedMs >= readyAfterSeconds * 1000 && this.pendingAnswers >= runningPolls;
    if (waitedEnough) {
      if (this.files.state === 'notProduced') return { kind: 'failed', status: 'failed', error: this.files.failure };
      if (this.files.state === 'uploadFailed') {
        const message = `The emulator could not upload the export files: ${this.files.error.message}`;
        return { kind: 'failed', status: 'failed', error: { code: 'EmulatorUploadFailed', message } };
      }
      // Never report success while the files are still being written.
      if (this.files.state === 'uploaded') {
        return { kind: 'succeeded', status: successStatus, plan: this.files.plan, uploadedAt: this.files.at };
      }
    }
    return { kind: 'pending', status: this.pendingAnswers < notStartedPolls ? 'notStarted' : 'running' };
  }
}
