import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DockerfileScanError,
  scanDockerfile,
  scanDockerfileNames,
  type ScanOptions,
} from '../../../src/dockerfile/scan';
import { expandVariables } from '../../../src/dockerfile/expand';

const file = (name: string): string =>
  readFileSync(join(__dirname, '../../fixtures/dockerfiles', name), 'utf8');
const scan = (name: string, options?: ScanOptions): string[] =>
  scanDockerfile(file(name), options).map(
    (d) =>
      `${d.type} ${d.registry}/${d.repository}${d.tag ? `:${d.tag}` : ''}${d.digest ? `@${d.digest}` : ''}`,
  );

describe('dockerfile scan', () => {
  describe('scanDockerfile', () => {
    it.each<[string, ScanOptions, string[]]>([
      ['plain.Dockerfile', {}, ['RunTime docker.io/library/node:latest']],
      ['bom-scratch.Dockerfile', {}, ['BuildTime docker.io/library/golang:1.10-alpine']],
      ['escape-directive.Dockerfile', {}, ['RunTime mcr.microsoft.com/windows/servercore:ltsc2022']],
      ['continuation.Dockerfile', {}, ['RunTime registry.example.com/team/base:1.2']],
      [
        'aspnet-global-args.Dockerfile',
        { buildArgs: { build_image: 'aspnetcore-build', build_version: '2.0.6' } },
        [
          'RunTime docker.io/microsoft/aspnetcore:2.0.6',
          'BuildTime docker.io/microsoft/aspnetcore-build:2.0.6',
        ],
      ],
      ['arg-scope.Dockerfile', {}, ['RunTime docker.io/library/alpine:latest']],
      [
        'arg-scope.Dockerfile',
        { buildArgs: { TAG: '3.20' } },
        ['RunTime docker.io/library/alpine:pinned-3.20latest'],
      ],
      ['arg-scope.Dockerfile', { target: 'FIRST' }, ['RunTime docker.io/library/alpine:3.19']],
      [
        'arg-scope.Dockerfile',
        { target: 'first', buildArgs: { BASE: 'debian' } },
        ['RunTime docker.io/library/debian:3.19'],
      ],
      [
        'target-stages.Dockerfile',
        {},
        [
          'RunTime docker.io/library/nginx:stable',
          'BuildTime docker.io/library/node:lts',
          'BuildTime docker.io/library/npmcache:1',
        ],
      ],
      [
        'target-stages.Dockerfile',
        { target: 'build' },
        ['RunTime docker.io/library/node:lts', 'BuildTime docker.io/library/npmcache:1'],
      ],
      ['target-stages.Dockerfile', { target: 'base' }, []],
      [
        'numeric-and-copy-from.Dockerfile',
        {},
        [
          'RunTime docker.io/library/alpine:3.19',
          'BuildTime docker.io/library/golang:1.22',
          'BuildTime ghcr.io/acme/certs:2024',
        ],
      ],
      [
        'digest-pinned.Dockerfile',
        {},
        [
          'RunTime docker.io/library/alpine:3.19@sha256:c5b1261d6d3e43071626931fc004f70149baeba2c8ec672bd4f27761f8e1ad6b',
        ],
      ],
      ['unused-stage.Dockerfile', {}, ['RunTime docker.io/library/debian:bookworm-slim']],
      [
        'app-registry-arg.Dockerfile',
        { buildArgs: { REGISTRY_NAME: 'myreg.azurecr.io' } },
        ['RunTime myreg.azurecr.io/baseimages/node:15-alpine'],
      ],
      [
        'app-registry-arg.Dockerfile',
        { buildArgs: { REGISTRY_NAME: 'localhost:5000' } },
        ['RunTime localhost:5000/baseimages/node:15-alpine'],
      ],
    ])('%s with %j', (name, options, expected) => {
      expect(scan(name, options)).toEqual(expected);
    });

    it.each<[string, ScanOptions, string]>([
      ['no-from.Dockerfile', {}, 'the Dockerfile has no FROM instruction'],
      // acb reads every ARG as global; BuildKit does not: ARGs inside a stage are invisible to later FROM lines.
      [
        'aspnet-args.Dockerfile',
        { buildArgs: { build_image: 'aspnetcore-build', build_version: '2.0.6' } },
        "Dockerfile line 7: FROM 'microsoft/:' is not a valid image reference",
      ],
      [
        'empty-from.Dockerfile',
        {},
        "Dockerfile line 2: FROM '${EMPTY}' is empty once its variables are expanded",
      ],
      [
        'app-registry-arg.Dockerfile',
        {},
        "Dockerfile line 3: FROM '/baseimages/node:15-alpine' is not a valid image reference",
      ],
      [
        'bad-reference.Dockerfile',
        {},
        'Dockerfile line 1: FROM takes an image, optionally followed by AS and a stage name',
      ],
      ['upper-reference.Dockerfile', {}, "Dockerfile line 1: FROM 'Node:18' is not a valid image reference"],
      ['plain.Dockerfile', { target: 'nope' }, "the target stage 'nope' is not defined in the Dockerfile"],
    ])('refuses %s (%j) naming the line', (name, options, message) => {
      expect(() => scanDockerfile(file(name), options)).toThrow(DockerfileScanError);
      expect(() => scanDockerfile(file(name), options)).toThrow(message);
    });

    it('refuses a numeric stage reference to a stage not yet defined', () => {
      expect(() => scanDockerfile('FROM alpine\nCOPY --from=3 /a /a\n')).toThrow(
        'Dockerfile line 2: COPY --from refers to stage 3',
      );
    });

    it.each([
      ['an unterminated ${', 'ARG A=${B\nFROM x\n', "Dockerfile line 1: '${B' has an unterminated ${"],
      ['an unsupported ${B:?x}', 'ARG A=${B:?x}\nFROM x\n', "Dockerfile line 1: '${B:?x}' is not a variable"],
    ])(
      'refuses an ARG default with %s naming its line (a DockerfileScanError, a 400)',
      (_what, text, message) => {
        expect(() => scanDockerfile(text)).toThrow(DockerfileScanError);
        expect(() => scanDockerfile(text)).toThrow(message);
      },
    );

    it('treats an ARG named constructor or toString as unset, not as Object.prototype’s function', () => {
      expect(() => scanDockerfile('ARG constructor\nFROM ${constructor}\n')).toThrow(
        "FROM '${constructor}' is empty once its variables are expanded",
      );
      expect(scanDockerfile('ARG toString\nFROM busybox${toString}\n')).toEqual([
        {
          type: 'RunTime',
          registry: 'docker.io',
          repository: 'library/busybox',
          tag: 'latest',
          digest: null,
        },
      ]);
    });
  });

  describe('scanDockerfileNames', () => {
    it('gives each image every name the Dockerfile uses for it, as written and expanded, once', () => {
      const text = [
        'ARG REG=reg.example.com',
        'FROM ${REG}/base:1 AS build',
        'FROM alpine',
        'COPY --from=reg.example.com/base:1 /a /a',
        'RUN --mount=type=bind,from=docker.io/library/alpine:latest,target=/m true',
        'COPY --from=build /b /b',
      ].join('\n');

      const named = scanDockerfileNames(text);

      expect(named).toEqual([
        {
          dependency: {
            type: 'RunTime',
            registry: 'docker.io',
            repository: 'library/alpine',
            tag: 'latest',
            digest: null,
          },
          names: ['alpine', 'docker.io/library/alpine:latest'],
        },
        {
          dependency: {
            type: 'BuildTime',
            registry: 'reg.example.com',
            repository: 'base',
            tag: '1',
            digest: null,
          },
          names: ['${REG}/base:1', 'reg.example.com/base:1'],
        },
      ]);
      expect(named.map((n) => n.dependency)).toEqual(scanDockerfile(text));
    });
  });

  describe('expandVariables', () => {
    const vars = new Map<string, string | undefined>([
      ['SET', 'value'],
      ['EMPTY', ''],
      ['UNSET', undefined],
    ]);
    it.each([
      ['$SET', 'value'],
      ['${SET}', 'value'],
      ['a${SET}b$SET', 'avalueb' + 'value'],
      ['${UNSET:-fallback}', 'fallback'],
      ['${EMPTY:-fallback}', 'fallback'],
      ['${EMPTY-fallback}', ''],
      ['${UNSET-fallback}', 'fallback'],
      ['${SET:+alt}', 'alt'],
      ['${EMPTY:+alt}', ''],
      ['${EMPTY+alt}', 'alt'],
      ['${UNSET:-${SET}}', 'value'],
      ['$NOPE', ''],
      ['\\$SET', '$SET'],
      ['cost$', 'cost$'],
    ])('%s → %j', (text, out) => {
      expect(expandVariables(text, vars)).toBe(out);
    });

    it('refuses ${A:-…} nested more than 32 deep with a message saying so (not a stack overflow)', () => {
      const deep = `${'${A:-'.repeat(5000)}x${'}'.repeat(5000)}`;
      expect(() => expandVariables(deep, vars)).toThrow('nests ${…} more than 32 deep');
      expect(expandVariables(`${'${A:-'.repeat(32)}x${'}'.repeat(32)}`, new Map())).toBe('x');
    });
  });
});
