import { HttpRequest } from '@azure/functions';
import { checkRequest, readBody, readJson } from '../../../functions/http';

const post = (headers: Record<string, string>, body?: string, method = 'POST'): HttpRequest =>
  new HttpRequest({
    method,
    url: 'https://refit.example/api/scheduleRun',
    headers,
    ...(body !== undefined ? { body: { bytes: Buffer.from(body) } } : {}),
  });

describe('functions/http', () => {
  describe('checkRequest', () => {
    it.each<[string, Record<string, string>, string | null]>([
      ['a JSON POST with no Origin', { 'content-type': 'application/json', 'content-length': '2' }, null],
      ['a vendor JSON type', { 'content-type': 'application/merge-patch+json', 'content-length': '2' }, null],
      ['a bodyless POST with no Content-Type', { 'content-length': '0' }, null],
      ['a bodyless POST with no headers at all', {}, null],
      [
        'a body with no Content-Type',
        { 'content-length': '2' },
        'Content-Type must be application/json, got none',
      ],
      ['a chunked body with no Content-Type', { 'transfer-encoding': 'chunked' }, 'got none'],
      ['text/plain', { 'content-type': 'text/plain', 'content-length': '2' }, "got 'text/plain'"],
      ['a form', { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '2' }, 'got'],
      ['a lookalike type', { 'content-type': 'application/jsonx', 'content-length': '2' }, 'got'],
      [
        'a foreign Origin',
        { origin: 'https://evil.example', 'content-type': 'application/json', 'content-length': '2' },
        "origin 'https://evil.example' are not allowed",
      ],
      ['a listed Origin', { origin: 'https://app.example', 'content-type': 'application/json' }, null],
    ])('%s', (_name, headers, refusal) => {
      const check = (): void => checkRequest(post(headers, '{}'), ['https://app.example'], {});
      if (refusal === null) expect(check).not.toThrow();
      else expect(check).toThrow(refusal);
    });

    it('leaves a webhook’s Content-Type to the webhook, but not its Origin', () => {
      const hook = post({ 'content-type': 'text/plain', 'content-length': '2' }, '{}');
      expect(() => checkRequest(hook, [], { ownContentType: true })).not.toThrow();
      const foreign = post({ origin: 'https://evil.example', 'content-length': '2' }, '{}');
      expect(() => checkRequest(foreign, [], { ownContentType: true })).toThrow('not allowed');
    });

    it('does not ask a GET for a Content-Type', () => {
      expect(() => checkRequest(post({}, undefined, 'GET'), [], {})).not.toThrow();
    });
  });

  describe('readBody', () => {
    it('stops past the limit when no Content-Length is sent', async () => {
      await expect(readBody(post({}, 'x'.repeat(11)), 10)).rejects.toMatchObject({
        status: 413,
        message: 'the body is larger than the limit of 10 bytes',
      });
    });

    it('refuses a declared Content-Length over the limit before reading', async () => {
      await expect(readBody(post({ 'content-length': '11' }, 'x'), 10, 'the delivery')).rejects.toMatchObject(
        {
          status: 413,
          message: 'the delivery is 11 bytes; the limit is 10',
        },
      );
    });

    it('reads a body at the limit', async () => {
      expect((await readBody(post({}, 'x'.repeat(10)), 10)).toString()).toBe('x'.repeat(10));
    });
  });

  describe('readJson', () => {
    it('refuses a body with no Content-Type unless the type is optional (webhooks)', async () => {
      const untyped = (): HttpRequest => post({ 'content-length': '7' }, '{"a":1}');
      await expect(readJson(untyped(), 100)).rejects.toMatchObject({ status: 415 });
      await expect(readJson(untyped(), 100, { typeOptional: true })).resolves.toEqual({ a: 1 });
    });
  });
});
