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
R=${STATE_DIR}
W=${WORKSPACE}
mkdir -p "$R" "$W/context"
fail() { echo "$1" > "$R/error"; echo "$1" >> "$R/build.log"; echo 1 > "$R/exit"; exit 0; }
if [ "$REFIT_SOURCE_KIND" = archive ]; then
  curl -sS -f --retry 3 -o "$W/source.tar.gz" "$REFIT_SOURCE_URL" 2>> "$R/build.log" || fail "the source could not be downloaded"
  tar -xzf "$W/source.tar.gz" -C "$W/context" 2>> "$R/build.log" || fail "the source archive could not be extracted"
  rm -f "$W/source.tar.gz"
else
  set --
  if [ -n "\${REFIT_GIT_TOKEN:-}" ]; then
    B=$(printf 'x-access-token:%s' "$REFIT_GIT_TOKEN" | base64 | tr -d '\\n')
    export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader GIT_CONFIG_VALUE_0="Authorization: Basic $B"
  fi
  git clone --quiet \${REFIT_GIT_REF:+--branch "$REFIT_GIT_REF"} -- "$REFIT_SOURCE_URL" "$W/context" >> "$R/build.log" 2>&1 || fail "the git source could not be cloned"
  if [ -n "\${REFIT_GIT_COMMIT:-}" ]; then
    git -C "$W/context" checkout --quiet "$REFIT_GIT_COMMIT" -- >> "$R/build.log" 2>&1 || fail "the commit could not be checked out"
  fi
fi
C="$W/context/\${REFIT_CONTEXT_FOLDER:-}"
[ -d "$C" ] || fail "the context folder '\${REFIT_CONTEXT_FOLDER:-}' is not in the source"
[ -f "$C/$REFIT_DOCKERFILE" ] || fail "the Dockerfile '$REFIT_DOCKERFILE' is not in the context"
head -c 32768 "$C/$REFIT_DOCKERFILE" > "$R/Dockerfile"
echo "Source fetched" >> "$R/build.log"
`;

/**
 * The build container's command, run by kaniko's busybox sh with kaniko's flags as its arguments. Secret build
 * arguments come from the environment (REFIT_SECRET_ARGS names the indexes; REFIT_ARG_NAME_i and REFIT_ARG_VALUE_i)
 * so that their values are on no command line ARM returns.
 */
export const BUILD_SCRIPT = `R=${STATE_DIR}
mkdir -p "$R"
[ -f "$R/exit" ] && exit 0
if [ -f "$R/started" ]; then
  echo "the build container was started again by the platform: the build is not run twice" >> "$R/build.log"
  echo restarted > "$R/restarted"; echo 1 > "$R/exit"; exit 0
fi
touch "$R/started"
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
R=${STATE_DIR}
mkdir -p "$R"; touch "$R/build.log"
T=$(mktemp -d)
printf '%s\\n' "\${REFIT_MASKS:-}" > "$T/masks"
max=\${REFIT_MAX_LOG_BYTES:-67108864}
sent=0
shipped=0
mask() {
  awk -v masks="$T/masks" 'BEGIN { while ((getline s < masks) > 0) if (length(s) > 0) m[++n] = s }
    { line = $0; for (i = 1; i <= n; i++) { out = ""; while ((p = index(line, m[i])) > 0) {
        out = out substr(line, 1, p - 1) "***"; line = substr(line, p + length(m[i])) } line = out line }
      print line }' "$1"
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
while [ ! -f "$R/exit" ]; do ship partial; sleep 1; done
ship all; ship all; ship all
code=$(head -c 16 "$R/exit" | tr -dc 0-9 | head -c 3); [ -n "$code" ] || code=1
images=$(grep -E '^[A-Za-z0-9._:/@-]+$' "$R/images" 2>/dev/null | head -n 100 | sed 's/.*/"&"/' | paste -sd, -)
error=$(head -c 300 "$R/error" 2>/dev/null | tr -dc "A-Za-z0-9 ._:/'()-")
restarted=false; [ -f "$R/restarted" ] && restarted=true
dockerfile=$(base64 "$R/Dockerfile" 2>/dev/null | tr -d '\\n')
report="{\\"runId\\":\\"$REFIT_RUN_ID\\",\\"report\\":{\\"token\\":\\"$REFIT_REPORT_TOKEN\\",\\"exitCode\\":$code,\\"images\\":[$images],\\"restarted\\":$restarted,\\"error\\":\\"$error\\",\\"dockerfile\\":\\"$dockerfile\\"}}"
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
