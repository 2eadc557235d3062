/**
 * The poll queue. The Functions queue output binding cannot delay a message, so delayed polls
 * are sent with @azure/storage-queue's `visibilityTimeout`; the text is base64, which is what
 * the queue trigger decodes by default (plain JSON would go straight to the poison queue).
 * This is the one place that sends messages, so it is where every delay (poll, landing retry,
 * revival, standing down) is held to the queue's 7-day limit. Failures leave as StorageRequestError.
 */
import type { QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { encodePollMessage, type PollMessage } from '../core/pollMessage';
import { queueDelaySeconds } from '../core/polling';
import { callDeadline } from './deadline';
import { classified } from './storageError';

/** Messages live as long as a queue allows: a poll must never expire before its run ends. */
const NEVER_EXPIRE = -1;

export interface PollQueue {
  readonly name: string;
  ensure(): Promise<void>;
  /**
   * Sends a poll message that becomes visible after `delaySeconds`, held to 0..7 days (the
   * queue's limit); returns the delay used.
   */
  send(message: PollMessage, delaySeconds: number): Promise<number>;
  /**
   * Moves a message that cannot be processed to `<queue>-poison`, as the host would. `decodedText`
   * is what the trigger handed over (the host has already decoded the base64); it is stored
   * base64-encoded again, as the host stores what it moves, so that an operator can move it back.
   */
  sendToPoison(decodedText: string): Promise<void>;
}

export function createPollQueue(service: QueueServiceClient, name: string, options: { readonly callTimeoutMs?: number } = {}): PollQueue {
  const deadline = () => callDeadline(options.callTimeoutMs);
  const queue: QueueClient = service.getQueueClient(name);
  const poison: QueueClient = service.getQueueClient(poisonQueueName(name));
  return {
    name,
    async ensure() {
      await classified(() => Promise.all([queue.createIfNotExists(deadline()), poison.createIfNotExists(deadline())]));
    },
    async send(message, delaySeconds) {
      const visibilityTimeout = queueDelaySeconds(delaySeconds);
      await classified(() => queue.sendMessage(encodePollMessage(message), { visibilityTimeout, messageTimeToLive: NEVER_EXPIRE, ...deadline() }));
      return visibilityTimeout;
    },
    async sendToPoison(decodedText) {
      await classified(() => poison.sendMessage(Buffer.from(decodedText, 'utf8').toString('base64'), { messageTimeToLive: NEVER_EXPIRE, ...deadline() }));
    },
  };
}

export function poisonQueueName(queueName: string): string {
  return `${queueName}-poison`;
}
