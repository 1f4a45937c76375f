#!/usr/bin/env bash
# Commit triggers without GitHub: serve a bare repository with `git daemon` on loopback, install a post-receive
# hook that posts a signed GitHub-format push webhook to Refit, create a task over the repository, and push.
#
#   npm start                                  # in another terminal
#   bash examples/git-push-trigger/run.sh      # from the Refit folder
#
# Every `git push` to git://127.0.0.1:9418/hello-app.git then builds the pushed commit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
data=${REFIT_DATA_DIR:-$root/.refit}
export REFIT_URL=${REFIT_URL:-http://127.0.0.1:7071}
export REFIT_WEBHOOK_SECRET=${REFIT_WEBHOOK_SECRET:-$(cat "$data/webhook.secret")}
port=${GIT_PORT:-9418}
base=${GIT_BASE:-$data/git}
repo=hello-app
clone_url="git://127.0.0.1:$port/$repo.git"
refit="$root/node_modules/.bin/refit"

mkdir -p "$base"
if [ ! -d "$base/$repo.git" ]; then
  git init -q --bare -b main "$base/$repo.git"
fi
# The hook knows where Refit is and how to sign; it runs on every push.
cat > "$base/$repo.git/hooks/post-receive" <<HOOK
#!/bin/sh
while read old new ref; do
  REFIT_URL='$REFIT_URL' REFIT_WEBHOOK_SECRET='$REFIT_WEBHOOK_SECRET' REPO_CLONE_URL='$clone_url' \\
    node '$here/post-push.js' "\$old" "\$new" "\$ref"
done
HOOK
chmod +x "$base/$repo.git/hooks/post-receive"

if ! git ls-remote "$clone_url" >/dev/null 2>&1; then
  echo "Serving $base on git://127.0.0.1:$port/ (git daemon, loopback only)"
  git daemon --reuseaddr --export-all --enable=receive-pack --base-path="$base" --listen=127.0.0.1 --port="$port" \
    --detach --pid-file="$base/daemon.pid" "$base"
  sleep 0.5
fi

if ! "$refit" task show -n hello-app >/dev/null 2>&1; then
  "$refit" task create -n hello-app -c "$clone_url#main" -t 'hello-app:{{.Run.ID}}' --base-image-trigger-enabled false >/dev/null
  echo "Created task hello-app over $clone_url (branch main)"
fi

work=$(mktemp -d)
git clone -q "$clone_url" "$work/app" 2>/dev/null || git init -q -b main "$work/app"
cp "$root/examples/hello/Dockerfile" "$root/examples/hello/hello.sh" "$work/app/"
date -u +%s > "$work/app/pushed-at"
git -C "$work/app" add -A
git -C "$work/app" -c user.email=demo@refit.local -c user.name=demo commit -qm "demo change $(date -u +%H:%M:%S)"
echo "Pushing $(git -C "$work/app" rev-parse --short HEAD) to $clone_url ..."
git -C "$work/app" push -q origin HEAD:main
rm -rf "$work"
echo
echo "See it build:  $refit task list-runs -n hello-app -o table   /   $refit task logs -n hello-app"
