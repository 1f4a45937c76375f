export {
  PROJECT_ROOT as ROOT,
  spawnStack,
  stopStack,
  waitHealthy,
  type ChildStackPorts as TestStackPorts,
} from '../../src/local/child-stack';
