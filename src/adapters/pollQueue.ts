/**
 * The poll queue. The Functions queue output binding cannot delay a message, so delayed polls
 * are sent with @azure/storage-queue's `visibilityTimeout`; the text is base64, which is what
 * the queue trigger decodes by default (plain JSON would go straight to the poison queue).
 */
import type { QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { encodePollMessage, type PollMessage } from '../core/pollMessage';
import { callDeadline } from './deadline';

/** Messages live as long as a queue allows: a poll must never expire before its run ends. */
const NEVER_EXPIRE = -1;

export interface PollQueue {
  readonly name: string;
  ensure(): Promise<void>;
  /** Sends a poll message that becomes visible after `delaySeconds`. */
  send(message: PollMessage, delaySeconds: number): Promise<void>;
  /** Moves a message that cannot be processed to `<queue>-poison`, as the host would. */
  sendToPoison(messageText: string): Promise<void>;
}

export function createPollQueue(service: QueueServiceClient, name: string, options: { readonly callTimeoutMs?: number } = {}): PollQueue {
  const deadline = () => callDeadline(options.callTimeoutMs);
  const queue: QueueClient = service.getQueueClient(name);
  const poison: QueueClient = service.getQueueClient(poisonQueueName(name));
  return {
    name,
    async ensure() {
      await Promise.all([queue.createIfNotExists(deadline()), poison.createIfNotExists(deadline())]);
    },
    async send(message, delaySeconds) {
      await queue.sendMessage(encodePollMessage(message), {
        visibilityTimeout: Math.max(0, Math.round(delaySeconds)),
        messageTimeToLive: NEVER_EXPIRE,
        ...deadline(),
      });
    },
    async sendToPoison(messageText) {
      await poison.sendMessage(messageText, { messageTimeToLive: NEVER_EXPIRE, ...deadline() });
    },
  };
}

export function poisonQueueName(queueName: string): string {
  return `${queueName}-poison`;
}
