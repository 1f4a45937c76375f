#!/usr/bin/env node
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const entry = join(__dirname, '..', '..', 'dist', 'src', 'cli', 'main.js');
if (!existsSync(entry)) {
  console.error(
    'refit is not compiled yet: run `npm install` (or `npm run build`) in the Refit folder first.',
  );
  process.exit(1);
}
require(entry)
  .main(process.argv)
  .then(
    (code) => process.exit(code),
    (err) => {
      console.error(`refit: ${err && err.message ? err.message : String(err)}`);
      process.exit(1);
    },
  );
