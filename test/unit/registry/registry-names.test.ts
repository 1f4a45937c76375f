import { RegistryNames } from '../../../src/registry/registry-names';

describe('registry-names', () => {
  const names = new RegistryNames('127.0.0.1:5000', ['localhost:5000']);

  describe('canonical', () => {
    it.each([
      ['localhost:5000', '127.0.0.1:5000'],
      ['127.0.0.1:5000', '127.0.0.1:5000'],
      ['index.docker.io', 'docker.io'],
      ['registry-1.docker.io', 'docker.io'],
      ['127.0.0.1:5002', '127.0.0.1:5002'],
      ['reg.example.com', 'reg.example.com'],
    ])('names %s as %s', (given, canonical) => {
      expect(names.canonical(given)).toBe(canonical);
    });
  });

  describe('names', () => {
    it('gives every name of the home registry, and only its own name for another', () => {
      expect(names.names('localhost:5000').sort()).toEqual(['127.0.0.1:5000', 'localhost:5000']);
      expect(names.names('127.0.0.1:5002')).toEqual(['127.0.0.1:5002']);
    });
  });

  describe('find', () => {
    it('finds the entry of a login server by any name of its registry', () => {
      const logins = { 'localhost:5000': 'home', 'index.docker.io': 'hub' };
      expect(names.find(logins, '127.0.0.1:5000')).toBe('home');
      expect(names.find(logins, 'docker.io')).toBe('hub');
      expect(names.find(logins, '127.0.0.1:5002')).toBeUndefined();
      expect(names.find(undefined, 'docker.io')).toBeUndefined();
    });
  });
});
