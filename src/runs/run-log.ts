import { EventEmitter } from 'node:events';
import type { AppendBlobClient, ContainerClient } from '@azure/storage-blob';
import { names, type Storage } from '../storage/storage';
import type { RunStatus } from './run';

const MAX_BLOCK = 4 * 1024 * 1024;

// Wakes followers in this process as soon as their log grows (other processes poll the blob).
const appended = new EventEmitter().setMaxListeners(0);

/** The value of the `complete` metadata a finished log carries, as ACR writes it. */
export function completionMark(status: RunStatus): string {
  switch (status) {
    case 'Succeeded':
      return 'successful';
    case 'Timeout':
      return 'timedout';
    case 'Canceled':
      return 'canceled';
    case 'Error':
      return 'internalerror';
    default:
      return 'failed';
  }
}

function logBlobName(runId: string): string {
  return `${runId}/rawtext.log`;
}

/** `2026/11/23 02:30:00` — the stamp ACR's own log lines start with. */
export function logStamp(date = new Date()): string {
  return date.toISOString().replace(/-/g, '/').replace('T', ' ').slice(0, 19);
}

/** Replaces every secret value in `text` with asterisks. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret) out = out.split(secret).join('*************');
  return out;
}

/** Writes a run's log into its append blob as it is produced, in small batches, with secrets masked. */
export class RunLogWriter {
  private pending: string[] = [];
  private inFlight: Promise<void> | undefined;
  private partial = '';

  constructor(
    private readonly blob: AppendBlobClient,
    private readonly runId: string,
    private readonly secrets: readonly string[],
  ) {}

  /** A line of Refit's own, stamped. */
  line(text: string): void {
    this.write(`${logStamp()} ${text}\n`);
  }

  /** Raw output of a tool; masked line by line so that a secret split across chunks is still caught. */
  write(chunk: string): void {
    const text = this.partial + chunk;
    const cut = text.lastIndexOf('\n');
    if (cut < 0) {
      if (text.length < 64 * 1024) {
        this.partial = text;
        return;
      }
      this.partial = '';
      this.enqueue(maskSecrets(text, this.secrets));
      return;
    }
    this.partial = text.slice(cut + 1);
    this.enqueue(maskSecrets(text.slice(0, cut + 1), this.secrets));
  }

  // An idle writer sends at once; while an append is under way, what comes meanwhile waits and goes in one block.
  private enqueue(text: string): void {
    this.pending.push(text);
    this.inFlight ??= this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const data = Buffer.from(this.pending.join(''));
        this.pending = [];
        for (let at = 0; at < data.length; at += MAX_BLOCK) {
          const block = data.subarray(at, at + MAX_BLOCK);
          await this.blob.appendBlock(block, block.length);
        }
        appended.emit(this.runId);
      }
    } finally {
      this.inFlight = undefined;
    }
  }

  /** Resolves when everything written so far is in the blob. */
  async flush(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }

  /** Flushes everything, including a last line without a newline, and marks the log complete. */
  async close(status: RunStatus): Promise<void> {
    if (this.partial) this.enqueue(maskSecrets(this.partial + '\n', this.secrets));
    this.partial = '';
    await this.flush();
    await this.blob.setMetadata({ complete: completionMark(status) });
    appended.emit(this.runId);
  }
}

/** The log blobs of every run. */
export class RunLogs {
  private readonly container: ContainerClient;

  constructor(storage: Storage) {
    this.container = storage.container(names.containers.logs);
  }

  /** The append blob of a run. */
  blob(runId: string): AppendBlobClient {
    return this.container.getAppendBlobClient(logBlobName(runId));
  }

  /** Creates the (empty) log of a run, when it is dispatched (a Queued run reads as an empty log until then). */
  async create(runId: string): Promise<void> {
    await this.blob(runId).createIfNotExists({
      blobHTTPHeaders: { blobContentType: 'text/plain; charset=utf-8' },
    });
  }

  /** A writer that appends to the run's log, masking `secrets`. */
  writer(runId: string, secrets: readonly string[]): RunLogWriter {
    return new RunLogWriter(this.blob(runId), runId, secrets);
  }

  /** Marks a run's log complete without writing to it (a run that never reached an executor). */
  async markComplete(runId: string, status: RunStatus, lastLine?: string): Promise<void> {
    await this.create(runId);
    const writer = this.writer(runId, []);
    if (lastLine) writer.line(lastLine);
    await writer.close(status);
  }

  /** The whole log as it is now. */
  async read(runId: string): Promise<string> {
    try {
      return (await this.blob(runId).downloadToBuffer()).toString('utf8');
    } catch (err) {
      if (statusOf(err) === 404) return '';
      throw err;
    }
  }

  /** Reads a log from `offset` to its end; nothing new is an empty chunk (a Queued run's log does not exist yet). */
  private async readFrom(blob: AppendBlobClient, offset: number): Promise<LogRead> {
    try {
      const res = await blob.download(offset);
      const parts: Buffer[] = [];
      for await (const part of res.readableStreamBody ?? []) parts.push(part as Buffer);
      return { chunk: Buffer.concat(parts), complete: Boolean(res.metadata?.complete) };
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) return { chunk: Buffer.alloc(0), complete: false };
      if (status !== 416) throw err;
      // At the end already: only the metadata can have changed.
      const props = await blob.getProperties();
      return {
        chunk: Buffer.alloc(0),
        complete: Boolean(props.metadata?.complete) && (props.contentLength ?? 0) <= offset,
      };
    }
  }

  /**
   * Yields the log from the start, then each new piece as it is appended, until the log is marked complete
   * or `signal` aborts.
   */
  async *follow(runId: string, signal?: AbortSignal, pollMs = 250): AsyncGenerator<Buffer> {
    const blob = this.blob(runId);
    let offset = 0;
    // Subscribed for the whole follow, so an append between a read and the wait is never missed.
    let signaled = false;
    let wake: (() => void) | undefined;
    const onAppend = (): void => {
      signaled = true;
      wake?.();
    };
    appended.on(runId, onAppend);
    try {
      while (!signal?.aborted) {
        signaled = false;
        // One request while the log grows: a read from where we are (its answer carries the metadata too).
        const read = await this.readFrom(blob, offset);
        if (read.chunk.length > 0) {
          offset += read.chunk.length;
          yield read.chunk;
          continue;
        }
        if (read.complete) return;
        if (signaled) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => wake?.(), pollMs);
          wake = (): void => {
            clearTimeout(timer);
            wake = undefined;
            resolve();
          };
        });
      }
    } finally {
      appended.off(runId, onAppend);
    }
  }
}

/** What a read from an offset found: the new bytes, and whether the log is marked complete. */
interface LogRead {
  readonly chunk: Buffer;
  readonly complete: boolean;
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}
