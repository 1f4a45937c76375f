/**
 * The three programs of a build's container group, as POSIX shell (busybox's in the kaniko image, any sh with curl,
 * tar and git in the helper image). They share an emptyDir ({@link WORKSPACE}), and talk to Refit only through what the
 * group was given: a read SAS for an uploaded source, an append SAS for the run's log blob and the run-completions
 * queue's URL (a send SAS, or none: then the builder identity's token from the instance metadata service).
 *
 *   fetch  (init container, helper image): the source into the workspace's context folder; its Dockerfile copied to .refit/.
 *   build  (kaniko's :debug image): kaniko, whose exit code and pushed digests are written to .refit/. It always
 *          exits 0, because ACI may restart a failed container even with restartPolicy Never; a second start finds
 *          .refit/started and reports the restart instead of building again.
 *   report (helper image): ships .refit/build.log to the log blob while the build runs (whole lines, secrets masked
 *          before they leave the group), then sends `{runId, report}` to the run-completions queue.
 *
 * Every value a script needs comes from the environment (secrets as ACI secure values, never on a command line).
 */

/**
 * Where the group's emptyDir is mounted: not /workspace, which Dockerfiles use as their WORKDIR and which kaniko would
 * leave out of the image (it does not snapshot mounted paths).
 */
export const WORKSPACE = '/refit-workspace';
/** Where the scripts keep their state in the shared workspace. */
export const STATE_DIR = `${WORKSPACE}/.refit`;

/**
 * The init container. REFIT_SOURCE_KIND is `archive` (REFIT_SOURCE_URL: a tar.gz to download) or `git`
 * (REFIT_SOURCE_URL the repository, REFIT_GIT_REF, REFIT_GIT_COMMIT, REFIT_GIT_TOKEN sent as a header, never in the
 * URL); REFIT_CONTEXT_FOLDER is the context within the source, REFIT_DOCKERFILE the Dockerfile within the context.
 * A failure is written to .refit/exit and .refit/error for the report; the script itself exits 0.
 */
export const FETCH_SCRIPT = `set -u
R=\${REFIT_STATE:-}; [ -n "$R" ] || R=${STATE_DIR}
D=\${REFIT_SOURCE_DEST:-}; [ -n "$D" ] || D=${WORKSPACE}/context
mkdir -p "$R" "$D"
fail() { echo "$1" > "$R/error"; echo "$1" >> "$R/build.log"; echo 1 > "$R/exit"; exit 0; }
if [ "$REFIT_SOURCE_KIND" = archive ]; then
  curl -sS -f --retry 3 -o "$R/source.tar.gz" "$REFIT_SOURCE_URL" 2>> "$R/build.log" || fail "the source could not be downloaded"
  tar -xzf "$R/source.tar.gz" -C "$D" 2>> "$R/build.log" || fail "the source archive could not be extracted"
  rm -f "$R/source.tar.gz"
else
  set --
  if [ -n "\${REFIT_GIT_TOKEN:-}" ]; then
    B=$(printf 'x-access-token:%s' "$REFIT_GIT_TOKEN" | base64 | tr -d '\\n')
    export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader GIT_CONFIG_VALUE_0="Authorization: Basic $B"
  fi
  git clone --quiet \${REFIT_GIT_REF:+--branch "$REFIT_GIT_REF"} -- "$REFIT_SOURCE_URL" "$D" >> "$R/build.log" 2>&1 || fail "the git source could not be cloned"
  if [ -n "\${REFIT_GIT_COMMIT:-}" ]; then
    git -C "$D" checkout --quiet "$REFIT_GIT_COMMIT" -- >> "$R/build.log" 2>&1 || fail "the commit could not be checked out"
  fi
  git -C "$D" rev-parse HEAD > "$R/commit" 2> /dev/null
  git -C "$D" rev-parse --abbrev-ref HEAD > "$R/branch" 2> /dev/null
fi
C="$D/\${REFIT_CONTEXT_FOLDER:-}"
[ -d "$C" ] || fail "the context folder '\${REFIT_CONTEXT_FOLDER:-}' is not in the source"
if [ -n "\${REFIT_DOCKERFILE:-}" ]; then
  [ -f "$C/$REFIT_DOCKERFILE" ] || fail "the Dockerfile '$REFIT_DOCKERFILE' is not in the context"
  head -c 32768 "$C/$REFIT_DOCKERFILE" > "$R/Dockerfile"
fi
echo "Source fetched" >> "$R/build.log"
`;

/**
 * The start of a group's main program: ACI may start a container again even with restartPolicy Never, and a second
 * start finds the `started` marker and reports the restart instead of running the work twice.
 */
function once(what: string): string {
  return `[ -f "$R/exit" ] && exit 0
if [ -f "$R/started" ]; then
  echo "the ${what} container was started again by the platform: the ${what} is not run twice" >> "$R/build.log"
  echo restarted > "$R/restarted"; echo 1 > "$R/exit"; exit 0
fi
touch "$R/started"`;
}

/**
 * The build container's command, run by kaniko's busybox sh with kaniko's flags as its arguments. Secret build
 * arguments come from the environment (REFIT_SECRET_ARGS names the indexes; REFIT_ARG_NAME_i and REFIT_ARG_VALUE_i)
 * so that their values are on no command line ARM returns.
 */
export const BUILD_SCRIPT = `R=\${REFIT_STATE:-}; [ -n "$R" ] || R=${STATE_DIR}
mkdir -p "$R"
${once('build')}
for i in \${REFIT_SECRET_ARGS:-}; do
  eval "n=\\$REFIT_ARG_NAME_$i; v=\\$REFIT_ARG_VALUE_$i"
  set -- "$@" "--build-arg=$n=$v"
done
{ /kaniko/executor "$@"; echo $? > "$R/exit.part"; } 2>&1 | tee -a "$R/build.log"
mv "$R/exit.part" "$R/exit"
exit 0
`;

/**
 * The reporter. REFIT_LOG_URL: the log blob with an append SAS; REFIT_REPORT_URL: the run-completions queue's
 * messages URL (with a send SAS, or without: then a token of the builder identity, AZURE_CLIENT_ID, from the instance
 * metadata service); REFIT_REPORT_TOKEN: the run's completion token (Refit drops a report without it, so a build
 * cannot finish another run); REFIT_MASKS: the values to mask, one per line; REFIT_MAX_LOG_BYTES; REFIT_RUN_ID. What
 * the build could have written (exit code, image lines, error) is reduced to safe characters before it goes into the
 * report's JSON. Exits 0 once the report is sent, 3 when it could not be (the reconcile sweep then settles the run).
 */
export const REPORT_SCRIPT = `set -u
export LC_ALL=C
R=\${REFIT_STATE:-}; [ -n "$R" ] || R=${STATE_DIR}
mkdir -p "$R"; touch "$R/build.log"
# A group without a main container (the source's): its init container has ended, so the work is done.
if [ -n "\${REFIT_NO_MAIN:-}" ] && [ ! -f "$R/exit" ]; then touch "$R/started"; echo 0 > "$R/exit"; fi
T=$(mktemp -d)
printf '%s\\n' "\${REFIT_MASKS:-}" > "$T/masks"
max=\${REFIT_MAX_LOG_BYTES:-67108864}
sent=0
shipped=0
mask() {
  awk -v masks="$T/masks" -v prefix="\${REFIT_LOG_PREFIX:-}" 'BEGIN { while ((getline s < masks) > 0) if (length(s) > 0) m[++n] = s }
    { line = $0; for (i = 1; i <= n; i++) { out = ""; while ((p = index(line, m[i])) > 0) {
        out = out substr(line, 1, p - 1) "***"; line = substr(line, p + length(m[i])) } line = out line }
      print prefix line }' "$1"
}
append() {
  curl -sS -f -X PUT -H 'x-ms-version: 2021-08-06' -H 'Content-Type: application/octet-stream' \\
    --data-binary @"$1" "$REFIT_LOG_URL&comp=appendblock" > /dev/null
}
ship() {
  [ "$shipped" -lt "$max" ] || return 0
  size=$(wc -c < "$R/build.log")
  [ "$size" -gt "$sent" ] || return 0
  # An append block takes at most 4 MiB at this service version.
  [ $((size - sent)) -le 4000000 ] || size=$((sent + 4000000))
  tail -c +$((sent + 1)) "$R/build.log" | head -c $((size - sent)) > "$T/chunk"
  len=$(wc -c < "$T/chunk")
  if [ "$1" = partial ] && [ "$(tail -c 1 "$T/chunk" | od -An -c | tr -d ' ')" != '\\n' ]; then
    part=$(tail -n 1 "$T/chunk" | wc -c)
    len=$((len - part))
    [ "$len" -gt 0 ] || return 0
    head -c "$len" "$T/chunk" > "$T/whole" && mv "$T/whole" "$T/chunk"
  fi
  mask "$T/chunk" > "$T/masked"
  if append "$T/masked"; then
    sent=$((sent + len))
    shipped=$((shipped + $(wc -c < "$T/masked")))
    if [ "$shipped" -ge "$max" ]; then
      echo "The log reached its limit of $max bytes: the rest of the build's output is not kept" > "$T/note"
      append "$T/note" || true
    fi
  fi
}
waited=0
grace=\${REFIT_START_GRACE:-0}
while [ ! -f "$R/exit" ]; do
  ship partial; sleep 1; waited=$((waited + 1))
  if [ "$grace" -gt 0 ] && [ "$waited" -ge "$grace" ] && [ ! -f "$R/started" ] && [ ! -f "$R/exit" ]; then
    echo "the step's container did not start within $grace seconds (in ACI a cmd step's image needs /bin/sh)" | tee "$R/error" >> "$R/build.log"
    echo 127 > "$R/exit"
  fi
done
ship all; ship all; ship all
code=$(head -c 16 "$R/exit" | tr -dc 0-9 | head -c 3); [ -n "$code" ] || code=1
saved=false
save() {
  cd "$REFIT_WORKSPACE_DIR" || return 1
  if [ -f "$R/restored" ]; then
    # A step saves only what it changed (and the paths it deleted): its dependents extract the source, then the
    # changes of the steps before them in order, so that a step's edits are not undone by another's untouched copy.
    find . -mindepth 1 -newer "$R/restored" > "$T/changed"
    find . -mindepth 1 | sort > "$T/after"
    comm -23 "$R/before" "$T/after" > .refit-deleted
    echo ./.refit-deleted >> "$T/changed"
    tar -czf "$T/workspace.tar.gz" --no-recursion -T "$T/changed"; s=$?
    rm -f .refit-deleted
    [ "$s" = 0 ] || return 1
  else
    tar -czf "$T/workspace.tar.gz" . || return 1
  fi
  cd /
  curl -sS -f --retry 3 --max-time 1800 -X PUT -H 'x-ms-version: 2021-08-06' -H 'x-ms-blob-type: BlockBlob' \\
    -T "$T/workspace.tar.gz" "$REFIT_WORKSPACE_OUT_URL" > /dev/null
}
if [ -n "\${REFIT_WORKSPACE_OUT_URL:-}" ] && save; then saved=true; fi
cd /
images=$(grep -E '^[A-Za-z0-9._:/@-]+$' "$R/images" 2>/dev/null | head -n 100 | sed 's/.*/"&"/' | paste -sd, -)
error=$(head -c 300 "$R/error" 2>/dev/null | tr -dc "A-Za-z0-9 ._:/'()-")
restarted=false; [ -f "$R/restarted" ] && restarted=true
dockerfile=$(base64 "$R/Dockerfile" 2>/dev/null | tr -d '\\n')
tail -c 4096 "$R/build.log" > "$T/tail"; output=$(REFIT_LOG_PREFIX='' mask "$T/tail" | base64 | tr -d '\\n')
commit=$(head -c 64 "$R/commit" 2>/dev/null | tr -dc 0-9a-f)
branch=$(head -c 200 "$R/branch" 2>/dev/null | tr -dc "A-Za-z0-9._/-")
step=$(printf '%s' "\${REFIT_STEP:-}" | tr -dc "A-Za-z0-9._@-")
attempt=$(printf '%s' "\${REFIT_ATTEMPT:-}" | tr -dc "A-Za-z0-9._-")
report="{\\"runId\\":\\"$REFIT_RUN_ID\\",\\"report\\":{\\"token\\":\\"$REFIT_REPORT_TOKEN\\",\\"exitCode\\":$code,\\"images\\":[$images],\\"restarted\\":$restarted,\\"error\\":\\"$error\\",\\"dockerfile\\":\\"$dockerfile\\",\\"step\\":\\"$step\\",\\"attempt\\":\\"$attempt\\",\\"saved\\":$saved,\\"output\\":\\"$output\\",\\"commit\\":\\"$commit\\",\\"branch\\":\\"$branch\\"}}"
set --
case "$REFIT_REPORT_URL" in
  *\\?*) ;;
  *) token=$(curl -sS -H Metadata:true "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com%2F&client_id=\${AZURE_CLIENT_ID:-}" | sed -n 's/.*"access_token":"\\([^"]*\\)".*/\\1/p')
     set -- -H "Authorization: Bearer $token" ;;
esac
if curl -sS -f --retry 5 --retry-all-errors -X POST -H 'x-ms-version: 2021-08-06' -H 'Content-Type: application/xml' "$@" \\
    --data-binary "<QueueMessage><MessageText>$report</MessageText></QueueMessage>" "$REFIT_REPORT_URL" > /dev/null; then
  exit 0
fi
exit 3
`;

/*
 * The programs of a multi-step task's groups (see step-groups.ts). Each step attempt is a group of its own: the state
 * (log, exit code, markers) lives in an emptyDir of its own at {@link STEP_STATE}, apart from the workspace, so that
 * the workspace a step leaves to the steps after it holds only what the steps wrote.
 */

/** The state folder of a step group (its own emptyDir). */
export const STEP_STATE = '/refit-state';
/** Where cmd steps and the helper containers see the run's shared workspace, as acb mounts it. */
export const STEP_WORKSPACE = '/workspace';

/**
 * The init container of a step group (helper image): the workspaces the step starts from, extracted in order into
 * the workspace (its dependencies' workspaces, each already holding the source). REFIT_WORKSPACE_INS is the count;
 * REFIT_WORKSPACE_IN_i a read SAS URL; REFIT_DOCKERFILE (build steps) the Dockerfile to keep for the report, and
 * REFIT_FROM_MAP the images earlier steps built with their run-scoped names, which the copy kaniko builds from names
 * instead. A failure is left for the reporter, as in {@link FETCH_SCRIPT}.
 */
export const RESTORE_SCRIPT = `set -u
export LC_ALL=C
R=${STEP_STATE}
mkdir -p "$R" ${STEP_WORKSPACE}
fail() { echo "$1" > "$R/error"; echo "$1" >> "$R/build.log"; echo 1 > "$R/exit"; exit 0; }
i=0
while [ "$i" -lt "\${REFIT_WORKSPACE_INS:-0}" ]; do
  eval "url=\\$REFIT_WORKSPACE_IN_$i"
  curl -sS -f --retry 3 -o "$R/in.tar.gz" "$url" 2>> "$R/build.log" || fail "the workspace the step starts from could not be downloaded"
  tar -xzf "$R/in.tar.gz" -C ${STEP_WORKSPACE} 2>> "$R/build.log" || fail "the workspace the step starts from could not be extracted"
  rm -f "$R/in.tar.gz"
  # A step's changes carry the paths it deleted.
  if [ -f ${STEP_WORKSPACE}/.refit-deleted ]; then
    while IFS= read -r f; do rm -rf "${STEP_WORKSPACE}/$f"; done < ${STEP_WORKSPACE}/.refit-deleted
    rm -f ${STEP_WORKSPACE}/.refit-deleted
  fi
  i=$((i + 1))
done
# What the step starts from: its changes are what is newer than the mark, its deletions what is no longer there.
(cd ${STEP_WORKSPACE} && find . -mindepth 1 | sort > "$R/before")
touch "$R/restored"
# A build step's Dockerfile, for the dependencies the run records; and, when earlier steps built images it names in
# FROM or COPY --from, a copy that names their run-scoped copies instead (REFIT_FROM_MAP: "name scoped" lines).
if [ -n "\${REFIT_DOCKERFILE:-}" ]; then
  F="${STEP_WORKSPACE}/$REFIT_DOCKERFILE"
  head -c 32768 "$F" > "$R/Dockerfile" 2> /dev/null
  if [ -n "\${REFIT_FROM_MAP:-}" ]; then
    printf '%s\\n' "$REFIT_FROM_MAP" > "$R/from-map"
    awk -v map="$R/from-map" 'BEGIN { while ((getline l < map) > 0) { split(l, p, " "); if (p[1] != "") m[p[1]] = p[2] } }
      toupper($1) == "FROM" || toupper($1) == "COPY" { for (i = 2; i <= NF; i++) {
        if ($i in m) $i = m[$i]; else if (substr($i, 1, 7) == "--from=" && (substr($i, 8) in m)) $i = "--from=" m[substr($i, 8)] } }
      { print }' "$F" > "$R/Dockerfile.build" 2>> "$R/build.log" || fail "the Dockerfile could not be read"
  fi
fi
`;

/**
 * A cmd step's program, run by the step image's own /bin/sh (an ACI container has no working-directory setting, and
 * its output must reach the reporter). REFIT_ARGV: the command's words, each a `.` and its base64 (the dot keeps an
 * empty word; the `echo .` keeps a word's trailing newlines from the command substitution), so that secrets in them
 * are an ACI secure value and never on a command line ARM returns; REFIT_WORKDIR: where to run it (empty: the image's).
 */
export const STEP_SCRIPT = `R=${STEP_STATE}
${once('step')}
set --
for w in \${REFIT_ARGV:-}; do v=$(printf '%s' "\${w#.}" | base64 -d; echo .); set -- "$@" "\${v%.}"; done
wd=\${REFIT_WORKDIR:-}
unset REFIT_ARGV REFIT_WORKDIR
if [ -n "$wd" ] && ! cd "$wd" 2>> "$R/build.log"; then
  echo "the working directory $wd could not be entered" | tee "$R/error" >> "$R/build.log"; echo 1 > "$R/exit"; exit 0
fi
"$@" >> "$R/build.log" 2>&1 < /dev/null
echo $? > "$R/exit.part"
mv "$R/exit.part" "$R/exit"
exit 0
`;

/**
 * A push step's program (kaniko's busybox sh, kaniko's flags for the registries as its arguments): each image is
 * copied from where the run has it (REFIT_PUSH_FROM_i: the run-scoped copy of an image the run built, or the image
 * itself) to its name (REFIT_PUSH_TO_i), by a kaniko build of `FROM <source>` (the helper images hold no copy tool;
 * kaniko signs in to the home registry with the builder identity). The first failure ends the step.
 */
export const PUSH_SCRIPT = `R=${STEP_STATE}
${once('step')}
: > "$R/images"
i=0
while [ "$i" -lt "\${REFIT_PUSH_COUNT:-0}" ]; do
  eval "src=\\$REFIT_PUSH_FROM_$i; dst=\\$REFIT_PUSH_TO_$i"
  d="$R/push-$i"; mkdir -p "$d"; printf 'FROM %s\\n' "$src" > "$d/Dockerfile"
  echo "Pushing $dst" >> "$R/build.log"
  { /kaniko/executor --context="dir://$d" --dockerfile="$d/Dockerfile" --destination="$dst" "$@" \\
      --digest-file="$d/digest" --image-name-tag-with-digest-file="$d/images"; echo $? > "$d/exit"; } 2>&1 | tee -a "$R/build.log"
  code=$(cat "$d/exit")
  if [ "$code" != 0 ]; then echo "$code" > "$R/exit.part"; mv "$R/exit.part" "$R/exit"; exit 0; fi
  cat "$d/images" >> "$R/images"
  i=$((i + 1))
done
echo 0 > "$R/exit.part"
mv "$R/exit.part" "$R/exit"
exit 0
`;
