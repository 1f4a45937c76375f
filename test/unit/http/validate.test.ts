import { z } from 'zod';
import { acrRequest } from '../../../src/http/acr-body';
import { parseWith } from '../../../src/http/validate';

describe('validate', () => {
  describe('parseWith', () => {
    const schema = acrRequest(z.object({ properties: z.object({ timeout: z.number() }).strict() }).strict());

    it('names an absent or null property as required', () => {
      expect(() => parseWith(schema, { properties: {} })).toThrow('properties.timeout is required');
      expect(() => parseWith(schema, { properties: { timeout: null } })).toThrow(
        'properties.timeout is required',
      );
    });

    it('names a property of the wrong type as such, never as required', () => {
      expect(() => parseWith(schema, { properties: { timeout: 'x' } })).toThrow(
        'properties.timeout: Invalid input: expected number, received string',
      );
    });
  });
});
