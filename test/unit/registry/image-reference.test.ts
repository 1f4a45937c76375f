import { ValidationError } from '../../../src/errors';
import { formatImageReference, parseImageReference } from '../../../src/registry/image-reference';

describe('image-reference', () => {
  describe('parseImageReference', () => {
    it.each([
      ['node', 'docker.io', 'library/node', 'latest', null],
      ['node:9-alpine', 'docker.io', 'library/node', '9-alpine', null],
      ['library/node:16', 'docker.io', 'library/node', '16', null],
      ['registry.hub.docker.com/library/node:16', 'docker.io', 'library/node', '16', null],
      ['index.docker.io/node', 'docker.io', 'library/node', 'latest', null],
      ['myorg/myimage:mytag', 'docker.io', 'myorg/myimage', 'mytag', null],
      ['myregistry.azurecr.io/myorg/myimage:mytag', 'myregistry.azurecr.io', 'myorg/myimage', 'mytag', null],
      ['127.0.0.1:5000/hello:aa1', '127.0.0.1:5000', 'hello', 'aa1', null],
      ['localhost:5000/a/b/c', 'localhost:5000', 'a/b/c', 'latest', null],
      ['localhost/x', 'localhost', 'x', 'latest', null],
      [`alpine@sha256:${'a'.repeat(64)}`, 'docker.io', 'library/alpine', null, `sha256:${'a'.repeat(64)}`],
      [`alpine:3@sha256:${'b'.repeat(64)}`, 'docker.io', 'library/alpine', '3', `sha256:${'b'.repeat(64)}`],
    ])('parses %s', (input, registry, repository, tag, digest) => {
      expect(parseImageReference(input)).toEqual({ registry, repository, tag, digest });
    });

    it('puts a name without a registry into the given default registry, without library/', () => {
      expect(
        parseImageReference('hello:{v}'.replace('{v}', 'aa1'), { defaultRegistry: '127.0.0.1:5000' }),
      ).toEqual({
        registry: '127.0.0.1:5000',
        repository: 'hello',
        tag: 'aa1',
        digest: null,
      });
    });

    it.each([
      ['', 'empty'],
      ['Hello:1', 'lower-case'],
      ['hello:', 'not a valid tag'],
      ['hello:bad tag', 'not a valid tag'],
      ['/hello', 'lower-case'],
      ['hello//x', 'lower-case'],
      ['hello@sha256:xyz', 'not a digest'],
      ['bad_host_.io:99/x', 'not a registry host'],
    ])('rejects %j with a message saying why', (input, why) => {
      expect(() => parseImageReference(input, { field: 'imageNames[0]' })).toThrow(ValidationError);
      expect(() => parseImageReference(input)).toThrow(why);
    });

    it('names the field at fault', () => {
      try {
        parseImageReference('UPPER', { field: 'imageNames[2]' });
        throw new Error('no error');
      } catch (err) {
        expect((err as ValidationError).target).toBe('imageNames[2]');
      }
    });
  });

  describe('formatImageReference', () => {
    it('writes the reference out in full', () => {
      expect(formatImageReference(parseImageReference('node'))).toBe('docker.io/library/node:latest');
      expect(formatImageReference(parseImageReference('localhost:5000/x@sha256:' + 'c'.repeat(64)))).toBe(
        `localhost:5000/x@sha256:${'c'.repeat(64)}`,
      );
    });
  });
});
