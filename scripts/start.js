#!/usr/bin/env node
// `npm start`: installs what a fresh clone lacks (npm packages, the compiled code), then starts the local stack.
// Plain JavaScript with no dependencies, since it runs before anything is installed.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync, statSync, readdirSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const [major] = process.versions.node.split('.').map(Number);
if (major < 20) {
  console.error(`Refit needs Node.js 20 or newer; this is ${process.version}.`);
  process.exit(1);
}

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

if (!existsSync(join(root, 'node_modules', '.package-lock.json'))) {
  console.log('Installing npm packages...');
  run('npm', ['install', '--no-audit', '--no-fund']);
}
const entry = join(root, 'dist', 'src', 'local', 'main.js');
const sources = Math.max(newest(join(root, 'src')), newest(join(root, 'functions')));
if (!existsSync(entry) || statSync(entry).mtimeMs < sources) {
  console.log('Compiling...');
  run('npm', ['run', '--silent', 'build']);
}
require(entry);
