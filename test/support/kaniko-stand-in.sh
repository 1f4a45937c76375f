#!/bin/bash
# Plays kaniko's executor in the tests of the aci executor (kaniko cannot run here): it takes the kaniko flags the
# executor gives and does the same with buildah (chroot isolation, vfs): builds the context, pushes each destination,
# writes --digest-file and --image-name-tag-with-digest-file as kaniko does. Its exit code is buildah's.
set -u
context='' dockerfile='' target='' platform='' digest_file='' images_file='' push=1
destinations=() build_args=() tls=() labels=()
for arg in "$@"; do
  case "$arg" in
    --context=dir://*) context=${arg#--context=dir://} ;;
    --dockerfile=*) dockerfile=${arg#--dockerfile=} ;;
    --destination=*) destinations+=("${arg#--destination=}") ;;
    --build-arg=*) build_args+=(--build-arg "${arg#--build-arg=}") ;;
    --label=*) labels+=(--label "${arg#--label=}") ;;
    --target=*) target=${arg#--target=} ;;
    --no-push) push=0 ;;
    --custom-platform=*) platform=${arg#--custom-platform=} ;;
    --insecure-registry=*) tls=(--tls-verify=false) ;;
    --digest-file=*) digest_file=${arg#--digest-file=} ;;
    --image-name-tag-with-digest-file=*) images_file=${arg#--image-name-tag-with-digest-file=} ;;
    --skip-tls-verify-registry=* | --verbosity=*) ;;
    *) echo "kaniko stand-in: unknown flag $arg" >&2; exit 2 ;;
  esac
done
storage=(--storage-driver vfs)
tag="localhost/kaniko-stand-in:$$"
echo "INFO Building context $context (stand-in for kaniko)"
buildah "${storage[@]}" bud --isolation chroot "${tls[@]}" ${platform:+--platform "$platform"} \
  ${target:+--target "$target"} "${build_args[@]}" "${labels[@]}" -f "$dockerfile" -t "$tag" "$context" || exit $?
status=0
if [ "$push" = 1 ]; then
  : > "$images_file"
  for destination in "${destinations[@]}"; do
    buildah "${storage[@]}" push --quiet "${tls[@]}" --digestfile "$digest_file" "$tag" "docker://$destination" || { status=$?; break; }
    echo "INFO Pushed $destination"
    echo "$destination@$(cat "$digest_file")" >> "$images_file"
  done
fi
buildah "${storage[@]}" rmi "$tag" > /dev/null 2>&1
exit $status
