#!/bin/sh
# azd preprovision hook: gives the environment a REFIT_SECRET_KEY (32 random bytes, base64) unless it has one.
set -eu
if [ -z "$(azd env get-value REFIT_SECRET_KEY 2>/dev/null || true)" ]; then
  azd env set REFIT_SECRET_KEY "$(node -e "process.stdout.write(require('crypto').randomBytes(32).toString('base64'))")"
fi
