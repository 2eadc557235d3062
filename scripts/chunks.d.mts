// Types of ./chunks.mjs for the TypeScript that reads it (the tests).
export interface Chunk {
  readonly file: string;
  readonly source: string;
  readonly lazy: boolean;
}
export declare const CHUNKS: readonly Chunk[];
