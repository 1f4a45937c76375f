import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import type { AppendBlobClient, ContainerClient } from '@azure/storage-blob';
import pRetry from 'p-retry';
import { log } from '../log';
import { statusOf } from '../storage/write-conflicts';
import type { RunStatus } from './run';
import { SecretMasker, type MaskingStream } from './secret-masker';

/** Azure's limits of an append blob: 4 MiB per appended block, 50,000 blocks in all. */
const MAX_BLOCK_BYTES = 4 * 1024 * 1024;
const MAX_BLOCKS = 50000;
const LOG_CONTENT_TYPE = 'text/plain; charset=utf-8';

/** How a run's log is written: its size cap, how often it is appended to, how hard an append is retried. */
export interface RunLogOptions {
  /** Bytes of output a log keeps; past them the rest is dropped and one line says how much. */
  readonly maxBytes: number;
  /** The shortest time between two appends of a growing log (each append is a block of the append blob). */
  readonly flushIntervalMs: number;
  /**
   * How many times a failed append (and the completion mark) is retried before the writer gives up on it: the part
   * it held is then lost, and a line of the log says how much.
   */
  readonly retries: number;
  /** The pause before the first retry; doubled each time (with jitter), up to {@link maxRetryDelayMs}. */
  readonly retryDelayMs: number;
  /** The longest pause between two retries. */
  readonly maxRetryDelayMs: number;
}

/** The defaults: 64 MiB, at most one append a second (28,800 blocks in 8 hours), an outage of ~30 s ridden out. */
export const DEFAULT_RUN_LOG_OPTIONS: RunLogOptions = {
  maxBytes: 64 * 1024 * 1024,
  flushIntervalMs: 1000,
  retries: 5,
  retryDelayMs: 500,
  maxRetryDelayMs: 8000,
};

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

/** `1048576` → `1 MiB`. */
function sizeText(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const)
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  return `${bytes} bytes`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Writes a run's log into its append blob as it is produced, with secrets masked. Appends are batched (at most one
 * per `flushIntervalMs`, or as soon as a full 4 MiB block is waiting), so a chatty build stays far below the 50,000
 * blocks an append blob can hold. A failed append is retried with backoff; one that still fails never fails the
 * build and never rejects: its part of the log is lost, and the next append that lands (or the close) starts with a
 * line saying how many bytes were lost. Only {@link close} rejects, when not even the completion mark can be written.
 */
export class RunLogWriter {
  private readonly output: MaskingStream;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private kept = 0;
  private dropped = 0;
  /** Bytes of (masked) output that storage never took, and that no line of the log has owned up to yet. */
  private lost = 0;
  private endsLine = true;
  /** Whether what storage took last ends a line (a note about lost bytes must start on a line of its own). */
  private writtenEndsLine = true;
  private blocks = 0;
  private lastAttempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private failing = false;
  private closed = false;

  constructor(
    private readonly blob: AppendBlobClient,
    private readonly runId: string,
    private masker: SecretMasker,
    private readonly options: RunLogOptions = DEFAULT_RUN_LOG_OPTIONS,
  ) {
    this.output = masker.stream();
  }

  /**
   * Masks `secrets` too, from here on: values learnt after the writer was made (a task file's Key Vault secrets, read
   * when the file is loaded). What the writer holds back (the start of a secret it knew) is masked with them too.
   */
  addSecrets(secrets: readonly string[]): void {
    if (!secrets.some(Boolean)) return;
    this.masker = this.masker.with(secrets);
    this.output.use(this.masker);
  }

  /** A line of Refit's own, stamped. */
  line(text: string): void {
    this.write(`${logStamp()} ${text}\n`);
  }

  /** Raw output of a tool; a secret split across chunks or lines is still masked. */
  write(chunk: string): void {
    if (this.closed) return;
    this.keep(this.output.push(chunk));
  }

  /** A masker for another stream of output that ends up in this log (a step's, before it is cut into lines). */
  maskedStream(): MaskingStream {
    return this.masker.stream();
  }

  // Keeps what fits under the cap, up to its last whole line; from the first byte that does not fit, drops all.
  private keep(text: string): void {
    if (!text) return;
    let data = Buffer.from(text);
    if (this.dropped > 0 || this.kept + data.length > this.options.maxBytes) {
      let fits = this.dropped > 0 ? 0 : this.options.maxBytes - this.kept;
      if (fits > 0) fits = data.subarray(0, fits).lastIndexOf(0x0a) + 1;
      this.dropped += data.length - fits;
      data = data.subarray(0, fits);
      if (data.length === 0) return;
    }
    this.kept += data.length;
    this.endsLine = data[data.length - 1] === 0x0a;
    this.pending.push(data);
    this.pendingBytes += data.length;
    this.schedule();
  }

  // An idle writer appends on the next tick; a busy one at most once per interval, or at once for a full block.
  private schedule(): void {
    // A closed writer sends only from close(); an append under way schedules the next one when it ends.
    if (this.closed || this.sending) return;
    if (this.pendingBytes >= MAX_BLOCK_BYTES) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.send();
      return;
    }
    if (this.timer) return;
    // Close to the block limit (a run far longer than any timeout allows), only full blocks and the last flush.
    const reserve = Math.ceil(this.options.maxBytes / MAX_BLOCK_BYTES) + 10;
    if (this.blocks >= MAX_BLOCKS - reserve) return;
    const wait = Math.max(0, this.lastAttempt + this.options.flushIntervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // A flush may have started an append meanwhile: that one schedules the next when it ends.
      if (!this.sending) void this.send();
    }, wait);
    this.timer.unref();
  }

  // One append at a time, in order; it never rejects (what storage did not take is counted as lost).
  private send(): Promise<void> {
    const sending: Promise<void> = this.appendPending().finally(() => {
      if (this.sending === sending) this.sending = undefined;
      if (this.pendingBytes > 0) this.schedule();
    });
    this.sending = sending;
    return sending;
  }

  private async appendPending(): Promise<void> {
    const lostBefore = this.lost;
    const note = lostBefore > 0 ? this.lostNote(lostBefore) : '';
    if (this.pendingBytes === 0 && !note) return;
    const noteBytes = Buffer.byteLength(note);
    const data = Buffer.concat([Buffer.from(note), ...this.pending]);
    this.pending = [];
    this.pendingBytes = 0;
    let at = 0;
    try {
      await pRetry(async () => {
        // A retry goes on from the first block that did not land.
        while (at < data.length) {
          const block = data.subarray(at, at + MAX_BLOCK_BYTES);
          this.lastAttempt = Date.now();
          await this.appendBlock(block);
          at += block.length;
          this.blocks++;
          this.writtenEndsLine = block[block.length - 1] === 0x0a;
          appended.emit(this.runId);
        }
      }, this.retryOptions('run log append failed; it is retried'));
      this.lost = 0;
      if (this.failing) log.info('run log appends resumed', { runId: this.runId, lostBytes: lostBefore });
      this.failing = false;
    } catch (err) {
      // The note is in the first block: once that landed, only what came after it is still unsaid.
      const noteLanded = at >= noteBytes;
      const lostNow = data.length - Math.max(at, noteBytes);
      this.lost = (noteLanded ? 0 : lostBefore) + lostNow;
      this.failing = true;
      log.warn('run log append gave up: a part of the log is lost', {
        runId: this.runId,
        lostBytes: lostNow,
        error: errorText(err),
      });
    }
  }

  private lostNote(bytes: number): string {
    const line = `${logStamp()} ${bytes} bytes of this log were lost: storage was unavailable\n`;
    return (this.writtenEndsLine ? '' : '\n') + line;
  }

  /** Bounded retries with exponential backoff and jitter; an error that a retry cannot mend ends them at once. */
  private retryOptions(warning: string): pRetry.Options {
    return {
      retries: this.options.retries,
      factor: 2,
      minTimeout: this.options.retryDelayMs,
      maxTimeout: this.options.maxRetryDelayMs,
      randomize: true,
      onFailedAttempt: (err) => {
        if (!isTransient(err)) throw err;
        // Said once per outage, not once per try.
        if (!this.failing && err.attemptNumber === 1)
          log.warn(warning, { runId: this.runId, error: errorText(err) });
      },
    };
  }

  private async appendBlock(block: Buffer): Promise<void> {
    try {
      await this.blob.appendBlock(block, block.length);
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      // The blob is gone (deleted, or never created): the rest of the log goes into a new one. A missing
      // container fails here too, and is retried.
      await this.blob.createIfNotExists({ blobHTTPHeaders: { blobContentType: LOG_CONTENT_TYPE } });
      await this.blob.appendBlock(block, block.length);
    }
  }

  /**
   * Sends everything written so far, and waits for it. Never rejects: what storage does not take after the retries
   * is lost, and a later line of the log says so.
   */
  async flush(): Promise<void> {
    while (this.sending) await this.sending;
    if (this.pendingBytes > 0 || (this.closed && this.lost > 0)) await this.send();
  }

  /**
   * Flushes everything (a last line without a newline too), says how much was dropped past the cap and how much
   * storage lost, and marks the log complete. Rejects (and logs) only when the completion mark cannot be written.
   */
  async close(status: RunStatus): Promise<void> {
    this.keep(this.output.end());
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.dropped > 0) {
      const note = `${logStamp()} The log reached its limit of ${sizeText(this.options.maxBytes)}: the rest of the output (${this.dropped} bytes) was dropped\n`;
      const text = (this.endsLine ? '' : '\n') + note;
      this.pending.push(Buffer.from(text));
      this.pendingBytes += Buffer.byteLength(text);
    }
    await this.flush();
    // The last append failed too: the note about what was lost gets one more round of tries of its own.
    if (this.lost > 0) await this.flush();
    try {
      await pRetry(
        () => this.blob.setMetadata({ complete: completionMark(status) }),
        this.retryOptions('run log completion mark failed; it is retried'),
      );
    } catch (err) {
      log.warn('run log could not be marked complete', { runId: this.runId, error: errorText(err) });
      throw err;
    }
    appended.emit(this.runId);
  }
}

/** The log blobs of every run. */
export class RunLogs {
  /** `container` is the logs container (`storage.container(names.containers.logs)`). */
  constructor(
    private readonly container: ContainerClient,
    private readonly options: RunLogOptions = DEFAULT_RUN_LOG_OPTIONS,
  ) {}

  /** The append blob of a run. */
  blob(runId: string): AppendBlobClient {
    return this.container.getAppendBlobClient(logBlobName(runId));
  }

  /** Creates the (empty) log of a run, when it is dispatched (a Queued run reads as an empty log until then). */
  async create(runId: string): Promise<void> {
    await this.blob(runId).createIfNotExists({ blobHTTPHeaders: { blobContentType: LOG_CONTENT_TYPE } });
  }

  /** A writer that appends to the run's log, masking `secrets`. */
  writer(runId: string, secrets: readonly string[]): RunLogWriter {
    return new RunLogWriter(this.blob(runId), runId, new SecretMasker(secrets), this.options);
  }

  /** Marks a run's log complete without writing to it (a run that never reached an executor). */
  async markComplete(runId: string, status: RunStatus, lastLine?: string): Promise<void> {
    await this.create(runId);
    const writer = this.writer(runId, []);
    if (lastLine) writer.line(lastLine);
    await writer.close(status);
  }

  /** Deletes a run's log, if it has one (the retention purge). */
  async delete(runId: string): Promise<void> {
    await this.blob(runId).deleteIfExists();
  }

  /** The log as it is now, streamed from storage as it is read (empty before the run is dispatched). */
  async open(runId: string): Promise<Readable> {
    try {
      const res = await this.blob(runId).download(0);
      return (res.readableStreamBody as Readable | undefined) ?? Readable.from([]);
    } catch (err) {
      // 404: not dispatched yet; 416: an empty blob.
      const status = statusOf(err);
      if (status === 404 || status === 416) return Readable.from([]);
      throw err;
    }
  }

  /**
   * Yields the log from the start, then each new piece as it is appended, until the log is marked complete
   * or `signal` aborts. Each read is passed on as it arrives, never gathered whole.
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
        let grew = false;
        for await (const part of read.body) {
          const chunk = part as Buffer;
          offset += chunk.length;
          grew ||= chunk.length > 0;
          yield chunk;
        }
        if (grew) continue;
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

  /** Opens a read of a log from `offset` to its end; nothing new is an empty body (a Queued run's log does not exist yet). */
  private async readFrom(blob: AppendBlobClient, offset: number): Promise<LogRead> {
    try {
      const res = await blob.download(offset);
      return { body: res.readableStreamBody ?? [], complete: Boolean(res.metadata?.complete) };
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) return { body: [], complete: false };
      if (status !== 416) throw err;
      // At the end already: only the metadata can have changed.
      const props = await blob.getProperties();
      return {
        body: [],
        complete: Boolean(props.metadata?.complete) && (props.contentLength ?? 0) <= offset,
      };
    }
  }
}

/** What a read from an offset found: the new bytes as they come, and whether the log is marked complete. */
interface LogRead {
  readonly body: AsyncIterable<unknown> | readonly unknown[];
  readonly complete: boolean;
}

/**
 * Whether a retry can mend a storage error: no answer at all, a missing blob or container (created on the way), a
 * timeout, throttling or a server error. Any other 4xx (the blob's block limit, a lease) stays as it is.
 */
function isTransient(err: unknown): boolean {
  const status = statusOf(err);
  return status === undefined || status === 404 || status === 408 || status === 429 || status >= 500;
}
