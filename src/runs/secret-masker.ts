/** What a secret is replaced with in a run's log. */
export const MASK = '*************';

/**
 * Below this many bytes a secret is masked as it is (and URL- and JSON-escaped) but not in base64: a base64 fragment
 * of one to three bytes is two to four characters long and would match all over a log.
 */
export const MIN_BASE64_BYTES = 4;

const lowerHex = (encoded: string): string => encoded.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase());

// The secret URL-encoded, as encodeURIComponent and as a form body (a space as '+') write it, in either hex case.
function urlForms(value: string): string[] {
  const component = encodeURIComponent(value);
  const form = new URLSearchParams({ v: value }).toString().slice(2);
  return [component, lowerHex(component), form, lowerHex(form)];
}

/**
 * The base64 characters that depend on the secret alone when it starts `shift` bytes into a longer encoded text
 * (the characters it shares with its neighbours differ with them), at each shift, standard and URL-safe.
 */
function base64Forms(value: string): string[] {
  const bytes = Buffer.from(value);
  if (bytes.length < MIN_BASE64_BYTES) return [];
  return [0, 1, 2].flatMap((shift) => {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64');
    const fragment = encoded.slice(Math.ceil((8 * shift) / 6), Math.floor((8 * (shift + bytes.length)) / 6));
    return [fragment, fragment.replace(/\+/g, '-').replace(/\//g, '_')];
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Whether `form` starts with `text` from `at` to its end (compared in place: this runs for every piece of output). */
function startsWithTail(form: string, text: string, at: number): boolean {
  for (let i = at; i < text.length; i++) if (form.charCodeAt(i - at) !== text.charCodeAt(i)) return false;
  return true;
}

/**
 * The secrets of a run and every form of them the log must not show: as they are (with LF or CRLF line ends),
 * URL-encoded, JSON-escaped, and in base64 (standard and URL-safe, at each of the three alignments inside a longer
 * encoded text). A secret of several lines is also masked line by line (lines of four characters or more), as a
 * tool may print it so.
 */
export class SecretMasker {
  private readonly pattern: RegExp | undefined;
  // The forms by their first character: a stream checks only those where its tail could start one.
  private readonly byFirst = new Map<string, string[]>();
  private readonly firstCodes = new Uint8Array(0x10000);
  /** The longest form: what a stream may have to hold back. */
  readonly maxLength: number;

  constructor(private readonly secrets: readonly string[]) {
    const values = new Set<string>();
    for (const secret of secrets) {
      if (!secret) continue;
      values.add(secret);
      if (/[\r\n]/.test(secret))
        for (const line of secret.split(/\r?\n/)) if (line.trim().length >= 4) values.add(line);
    }
    const forms = new Set<string>();
    for (const value of values) {
      forms.add(value);
      forms.add(value.replace(/\r?\n/g, '\r\n'));
      forms.add(JSON.stringify(value).slice(1, -1));
      for (const f of [...urlForms(value), ...base64Forms(value)]) forms.add(f);
    }
    // Longer forms first: where two secrets start alike, the longer one is masked whole.
    const sorted = [...forms].sort((a, b) => b.length - a.length);
    this.maxLength = sorted[0]?.length ?? 0;
    for (const f of sorted) {
      this.byFirst.set(f[0]!, [...(this.byFirst.get(f[0]!) ?? []), f]);
      this.firstCodes[f.charCodeAt(0)] = 1;
    }
    // Literal alternatives only: V8 matches those an order of magnitude faster than per-character choices.
    this.pattern = sorted.length ? new RegExp(sorted.map(escapeRegExp).join('|'), 'g') : undefined;
  }

  /** A masker of these secrets and `more`. */
  with(more: readonly string[]): SecretMasker {
    return new SecretMasker([...this.secrets, ...more]);
  }

  /** `text` with every secret in it masked (a whole text; see {@link stream} for output that comes in pieces). */
  mask(text: string): string {
    return this.pattern ? text.replace(this.pattern, MASK) : text;
  }

  /** A masker for one stream of output: a secret split across the pieces is still masked. */
  stream(): MaskingStream {
    return new MaskingStream(this);
  }

  /**
   * Masks what can be masked in `text` and says where the safe part ends: from there on, `text` may be the
   * beginning of a secret whose end has not come yet.
   */
  maskUpTo(text: string): { masked: string; rest: string } {
    if (!this.pattern) return { masked: text, rest: '' };
    let hold = text.length;
    for (let at = Math.max(0, text.length - this.maxLength + 1); at < text.length; at++) {
      if (!this.firstCodes[text.charCodeAt(at)]) continue;
      const tail = text.length - at;
      const candidates = this.byFirst.get(text[at]!);
      if (candidates?.some((f) => f.length > tail && startsWithTail(f, text, at))) {
        hold = at;
        break;
      }
    }
    let masked = '';
    let last = 0;
    const pattern = this.pattern;
    pattern.lastIndex = 0;
    for (let match = pattern.exec(text); match && match.index < hold; match = pattern.exec(text)) {
      masked += text.slice(last, match.index) + MASK;
      last = pattern.lastIndex;
    }
    const cut = Math.max(hold, last);
    return { masked: masked + text.slice(last, cut), rest: text.slice(cut) };
  }
}

/** Masks one stream of output piece by piece, holding back a tail that could be the start of a secret. */
export class MaskingStream {
  private held = '';

  constructor(private masker: SecretMasker) {}

  /** Masks with `masker` from here on (one that knows more secrets): what is held back is masked by it too. */
  use(masker: SecretMasker): void {
    this.masker = masker;
  }

  /** What of the output so far can be shown, masked. */
  push(chunk: string): string {
    const { masked, rest } = this.masker.maskUpTo(this.held + chunk);
    this.held = rest;
    return masked;
  }

  /** The rest, masked: the stream has ended. */
  end(): string {
    const rest = this.masker.mask(this.held);
    this.held = '';
    return rest;
  }
}

/** Replaces every secret value in `text`, in every form {@link SecretMasker} knows, with asterisks. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  return new SecretMasker(secrets).mask(text);
}
