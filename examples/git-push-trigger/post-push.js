#!/usr/bin/env node
// Called by the repository's post-receive hook for every updated ref: posts a GitHub-format `push` webhook,
// signed with X-Hub-Signature-256 like GitHub signs it, to Refit. No dependencies: Node's own crypto and fetch.
'use strict';
const { createHmac, randomUUID } = require('node:crypto');

const [oldRev, newRev, ref] = process.argv.slice(2);
const refitUrl = process.env.REFIT_URL || 'http://127.0.0.1:7071';
const secret = process.env.REFIT_WEBHOOK_SECRET;
const cloneUrl = process.env.REPO_CLONE_URL;
if (!secret || !cloneUrl || !ref) {
  console.error('post-push: REFIT_WEBHOOK_SECRET, REPO_CLONE_URL and <old> <new> <ref> are required');
  process.exit(1);
}

const zero = /^0+$/;
const body = JSON.stringify({
  ref,
  before: oldRev,
  after: newRev,
  created: zero.test(oldRev),
  deleted: zero.test(newRev),
  repository: { clone_url: cloneUrl, html_url: cloneUrl.replace(/\.git$/, '') },
  head_commit: zero.test(newRev) ? null : { id: newRev },
});
const delivery = randomUUID();
const signature = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');

fetch(`${refitUrl}/api/hooks/github`, {
  method: 'POST',
  headers: {
    'content-type': 'application/json',
    'x-github-event': 'push',
    'x-github-delivery': delivery,
    'x-hub-signature-256': signature,
  },
  body,
})
  .then(async (res) => {
    const text = await res.text();
    console.log(`refit: ${res.status} ${text}`);
  })
  .catch((err) => console.error(`refit: webhook failed: ${err.message}`));
