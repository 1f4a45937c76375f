import { RestError } from '@azure/core-rest-pipeline';
import { isTransientFailure, NotFoundError } from '../../src/errors';

const systemError = (code: string): Error => Object.assign(new Error(`connect ${code}`), { code });

describe('errors', () => {
  describe('isTransientFailure', () => {
    it.each<[string, unknown, boolean]>([
      [
        'a RestError with no status (no answer)',
        new RestError('x', { code: RestError.REQUEST_SEND_ERROR }),
        true,
      ],
      ['a RestError 500', new RestError('x', { statusCode: 500 }), true],
      ['a RestError 503', new RestError('x', { statusCode: 503 }), true],
      ['a RestError 408', new RestError('x', { statusCode: 408 }), true],
      ['a RestError 429', new RestError('x', { statusCode: 429 }), true],
      ['a RestError 404', new RestError('x', { statusCode: 404 }), false],
      ['a RestError 403 (a wrong account key)', new RestError('x', { statusCode: 403 }), false],
      ['a RestError 501', new RestError('x', { statusCode: 501 }), false],
      ['ECONNREFUSED', systemError('ECONNREFUSED'), true],
      ['ETIMEDOUT', systemError('ETIMEDOUT'), true],
      [
        'fetch failed, caused by ECONNRESET',
        new TypeError('fetch failed', { cause: systemError('ECONNRESET') }),
        true,
      ],
      ['a timeout', new DOMException('timed out', 'TimeoutError'), true],
      ['a TypeError of our own', new TypeError('x is undefined'), false],
      ['a RefitError', new NotFoundError('no run'), false],
      ['a string', 'ECONNREFUSED', false],
      ['undefined', undefined, false],
    ])('%s → %s', (_name, err, transient) => {
      expect(isTransientFailure(err)).toBe(transient);
    });
  });
});
