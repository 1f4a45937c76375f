import { busyboxBase, registry, writeContext } from '../support/api';
import { refit } from '../support/cli';

describe('refit scan', () => {
  const dockerfile = [
    'ARG BASE=refit/busybox:stable',
    `FROM ${registry()}/\${BASE} AS build`,
    'RUN echo built > /out',
    'FROM scratch',
    'COPY --from=build /out /out',
    '',
  ].join('\n');

  it('prints the dependencies statically, with null digests', async () => {
    const dir = writeContext({ Dockerfile: dockerfile });
    const result = await refit(['scan', dir]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      baseImageDependencies: [
        { type: 'BuildTime', registry: registry(), repository: 'refit/busybox', tag: 'stable', digest: null },
      ],
    });
  });

  it('fills the digests from the registry with --resolve', async () => {
    const dir = writeContext({ Dockerfile: dockerfile });
    const [host, repositoryAndTag] = [registry(), busyboxBase().slice(registry().length + 1)];
    const [repository, tag] = repositoryAndTag.split(':') as [string, string];
    const head = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, {
      method: 'HEAD',
      headers: {
        accept:
          'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
      },
    });
    const digest = head.headers.get('docker-content-digest');
    expect(digest).toMatch(/^sha256:/);

    const result = await refit(['scan', '--resolve', dir]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).baseImageDependencies).toEqual([
      { type: 'BuildTime', registry: registry(), repository, tag, digest, platformDigest: digest },
    ]);
  });

  it('names the image it cannot resolve', async () => {
    const dir = writeContext({ Dockerfile: `FROM ${registry()}/no/such:image\n` });
    const result = await refit(['scan', '--resolve', dir]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`${registry()}/no/such:image`);
  });

  it('names the line of a FROM that expands to nothing', async () => {
    const dir = writeContext({ Dockerfile: 'ARG BASE\nFROM ${BASE}\n' });
    const result = await refit(['scan', dir]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/line 2/);
  });
});
