#!/usr/bin/env bash
# The seed tutorial "Automate image builds on base image update", on the local stack (npm run demo):
#   1. quick-build the base image (Dockerfile-base, NODE_VERSION 15.2.1) into the local registry;
#   2. create task baseexample1 over a git repository with Dockerfile-app and --arg REGISTRY_NAME=localhost:5000;
#   3. run it once by hand;
#   4. bump NODE_VERSION in the base and quick-build it again;
#   5. watch an "Image Update" run of the task appear on its own, built on the new base.
# Needs `npm start` running. Nothing leaves the machine: the base is built FROM the local busybox image.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
data=${REFIT_DATA_DIR:-$root/.refit}
export REFIT_URL=${REFIT_URL:-http://127.0.0.1:7071}
refit="$root/node_modules/.bin/refit"
port=${GIT_PORT:-9418}
base_dir=$data/git
repo=acr-build-helloworld-node
clone_url="git://127.0.0.1:$port/$repo.git"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

curl -sf "$REFIT_URL/api/health" >/dev/null || { echo "Refit is not running at $REFIT_URL: start it with npm start"; exit 1; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# A re-run starts over: the task of an earlier run would otherwise react to step 1.
"$refit" task delete -n baseexample1 >/dev/null 2>&1 || true

step "1. Build the base image (NODE_VERSION 15.2.1)"
mkdir -p "$work/base"
cp "$here/Dockerfile-base" "$work/base/Dockerfile-base"
"$refit" build -t baseimages/node:15-alpine -f Dockerfile-base "$work/base" | tail -2

step "2. Create the task over a git repository with Dockerfile-app"
mkdir -p "$base_dir"
rm -rf "$base_dir/$repo.git"
git init -q -b main "$work/app"
cp "$here/Dockerfile-app" "$work/app/"
git -C "$work/app" add -A
git -C "$work/app" -c user.email=demo@refit.local -c user.name=demo commit -qm "the sample app"
git clone -q --bare "$work/app" "$base_dir/$repo.git"
if ! git ls-remote "$clone_url" >/dev/null 2>&1; then
  git daemon --reuseaddr --export-all --base-path="$base_dir" --listen=127.0.0.1 --port="$port" --detach --pid-file="$base_dir/daemon.pid" "$base_dir"
  sleep 0.5
fi
"$refit" task create -n baseexample1 -c "$clone_url#main" -f Dockerfile-app -t 'helloworld:{{.Run.ID}}' \
  --arg REGISTRY_NAME=localhost:5000 --commit-trigger-enabled false >/dev/null
echo "Tracked before its first run; tasks built from localhost:5000/baseimages/node:15-alpine:"
"$refit" deps localhost:5000/baseimages/node:15-alpine |
  node -e 'for (const d of JSON.parse(require("fs").readFileSync(0)).value) console.log(`  ${d.task} (${d.type}, last built from ${d.digest ?? "nothing yet"})`)'

step "3. Run the task once"
"$refit" task run -n baseexample1 | grep -E 'built on node|was successful'

step "4. Update the base image (NODE_VERSION 15.2.1a) and build it again"
sed 's/^ENV NODE_VERSION 15.2.1$/ENV NODE_VERSION 15.2.1a/' "$here/Dockerfile-base" > "$work/base/Dockerfile-base"
"$refit" build -t baseimages/node:15-alpine -f Dockerfile-base "$work/base" | tail -1

step "5. The base-image update starts a run of the task by itself"
for _ in $(seq 1 60); do
  run=$("$refit" task list-runs -n baseexample1 -o tsv | awk -F'\t' '$5 == "Image Update" { print $1; exit }')
  [ -n "$run" ] && break
  sleep 0.5
done
[ -n "$run" ] || { echo "no Image Update run appeared"; exit 1; }
"$refit" task logs --run-id "$run" | grep -E 'built on node|was successful'
"$refit" task list-runs -n baseexample1 -o table
echo
echo "Why it ran:  $refit deps --updates localhost:5000/baseimages/node:15-alpine"
