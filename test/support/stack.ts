import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
export {
  PROJECT_ROOT as ROOT,
  spawnStack,
  stopStack,
  waitHealthy,
  type ChildStackPorts as TestStackPorts,
} from '../../src/local/child-stack';

/** The working containers left in the buildah storage of the stack whose data is in `dataDir` (its own storage). */
export function leftWorkingContainers(dataDir: string): string[] {
  const storage = join(dataDir, 'buildah');
  const result = spawnSync(
    'buildah',
    [
      '--storage-driver',
      'vfs',
      '--root',
      join(storage, 'root'),
      '--runroot',
      join(storage, 'runroot'),
      'containers',
      '--noheading',
      '--format',
      '{{.ContainerName}} ({{.ImageName}})',
    ],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`buildah containers failed: ${result.stderr}`);
  return result.stdout.split('\n').filter(Boolean);
}
