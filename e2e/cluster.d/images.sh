# e2e/cluster.d/images.sh — the container images the real node runs, built on this machine
# (no registry is reachable). Sourced by e2e/cluster; uses its pins, log/die and BIN_DIR.
#
# Each image is one layer: a root file system made here (mmdebstrap from the apt mirror the
# machine already uses, or a few static binaries), turned into an image by umoci (config:
# env, user, entrypoint) and written as a docker-archive by skopeo, which
# `ctr images import` takes. The archives are cached outside the clone, keyed by the
# versions and by the text of the recipe that made them, so a changed recipe rebuilds.

IMAGES_DIR="$CACHE_ROOT/images"

# The images, as "<recipe> <reference>". The references are what the operator's defaults and
# examples name (vitess/lite, quay.io/coreos/etcd) where the image holds exactly that release;
# otherwise an honest name (MySQL 9.7 is not the mysql:8.0 the defaults name; the exporter is
# the newest release the Go proxy serves).
image_list() {
  cat <<EOF
pause $PAUSE_IMAGE
vitess $VITESS_IMAGE
mysql $MYSQL_IMAGE
etcd $ETCD_IMAGE
mysqld_exporter $MYSQLD_EXPORTER_IMAGE
EOF
}

# The cache file of an image: its reference, its versions and a digest of its recipe's text.
image_archive() { # image_archive <recipe> <reference>
  local recipe="$1" ref="$2" digest
  digest="$({ declare -f "image_recipe_$recipe" write_image; printf '%s\n' "$ref" "$(image_inputs "$recipe")"; } |
    sha256sum | cut -c1-16)"
  printf '%s/%s-%s.tar' "$IMAGES_DIR" "$(printf '%s' "$ref" | tr '/:' '__')" "$digest"
}

# What else an image is made of, for its cache key.
image_inputs() {
  case "$1" in
    pause) printf 'k8s %s\n' "$K8S_VERSION" ;;
    vitess) printf 'vitess %s debian %s\n' "$VITESS_VERSION" "$VITESS_IMAGE_SUITE" ;;
    mysql) printf 'mysql %s debian %s\n' "$MYSQL_SERIES" "$MYSQL_IMAGE_SUITE" ;;
    etcd) printf 'etcd %s\n' "$ETCD_IMAGE_VERSION" ;;
    mysqld_exporter) printf 'exporter %s\n' "$MYSQLD_EXPORTER_VERSION" ;;
  esac
}

# write_image <rootfs.tar> <reference> <out.tar> <umoci config option>...: one-layer image.
write_image() {
  local rootfs="$1" ref="$2" out="$3" layout
  shift 3
  layout="$BUILD_TMP/oci"
  rm -rf "$layout"
  umoci init --layout "$layout" &&
    umoci new --image "$layout:image" &&
    umoci raw add-layer --image "$layout:image" "$rootfs" &&
    umoci config --image "$layout:image" \
      --config.env "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$@" &&
    skopeo --insecure-policy copy --quiet "oci:$layout:image" "docker-archive:$out.part:$ref" &&
    mv -f "$out.part" "$out" || die "writing image $ref failed"
  rm -rf "$layout"
}

# A tar of a directory, owned by root, in a stable order.
tar_dir() { # tar_dir <dir> <out.tar>
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$1" -cf "$2" .
}

# mmdebstrap_root <suite> <out.tar> <mmdebstrap option>...: a minbase Debian root from the
# machine's mirror, without documentation.
mmdebstrap_root() {
  local suite="$1" out="$2"
  shift 2
  mmdebstrap --quiet --variant=minbase \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    "$@" "$suite" "$out" "$DEBIAN_MIRROR" >>"$BUILD_TMP/mmdebstrap.log" 2>&1 ||
    { tail -n 30 "$BUILD_TMP/mmdebstrap.log" >&2; die "mmdebstrap $suite failed (log above)"; }
}

# The sandbox ("pause") container: Kubernetes' own pause.c from the module at K8S_VERSION,
# linked statically.
image_recipe_pause() {
  local out="$1" src
  src="$(go_module_dir "k8s.io/kubernetes@$K8S_VERSION")/build/pause/linux/pause.c"
  [[ -f "$src" ]] || die "pause.c not found in the k8s.io/kubernetes module ($src)"
  mkdir -p "$BUILD_TMP/pause"
  gcc -Os -Wall -Werror -static -DVERSION="${PAUSE_IMAGE##*:}" -o "$BUILD_TMP/pause/pause" "$src" ||
    die "compiling pause.c failed (needs gcc and libc6-dev)"
  strip "$BUILD_TMP/pause/pause"
  tar_dir "$BUILD_TMP/pause" "$BUILD_TMP/pause.tar"
  write_image "$BUILD_TMP/pause.tar" "$PAUSE_IMAGE" "$out" --config.entrypoint /pause --config.user 65535:65535
}

# vitess/lite as Vitess publishes it: Debian stable, the Vitess servers and tools under /vt/bin,
# the `vitess` user (999) that the operator's pods run as. MySQL itself is not in it (since
# Vitess v19 mysqld comes from the mysqld image; tablets copy mysqlctld into it).
image_recipe_vitess() {
  local out="$1" b hook
  for b in "${VITESS_BINS[@]}"; do
    [[ -x "$BIN_DIR/$b" ]] || die "Vitess binary $b is not built ($BIN_DIR/$b)"
  done
  hook="groupadd --system --gid 999 vitess && useradd --system --uid 999 --gid vitess --home-dir /vt --no-create-home vitess"
  mmdebstrap_root "$VITESS_IMAGE_SUITE" "$BUILD_TMP/vitess.tar" \
    --include=ca-certificates \
    --customize-hook="chroot \"\$1\" sh -c '$hook'" \
    --customize-hook="mkdir -p \"\$1/vt/bin\" \"\$1/vt/config\" \"\$1/vt/vtdataroot\" \"\$1/vt/socket\"" \
    --customize-hook="cp $(printf "'$BIN_DIR/%s' " "${VITESS_BINS[@]}") \"\$1/vt/bin/\"" \
    --customize-hook="chown -R 999:999 \"\$1/vt\""
  write_image "$BUILD_TMP/vitess.tar" "$VITESS_IMAGE" "$out" \
    --config.env VTROOT=/vt --config.env VTDATAROOT=/vt/vtdataroot \
    --config.env "PATH=/vt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --config.user 999:999 --config.workingdir /vt
}

# MySQL from Debian sid (mysql-server-core, mysql-client-core). The series is checked: sid moves,
# and an image named for 9.7 must hold 9.7.
image_recipe_mysql() {
  local out="$1" version hook
  hook="groupadd --system --gid 999 mysql && useradd --system --uid 999 --gid mysql --home-dir /var/lib/mysql --no-create-home mysql"
  mmdebstrap_root "$MYSQL_IMAGE_SUITE" "$BUILD_TMP/mysql.tar" \
    --include=mysql-server-core,mysql-client-core \
    --customize-hook="chroot \"\$1\" sh -c '$hook'" \
    --customize-hook="chroot \"\$1\" dpkg-query -W -f '\${Version}' mysql-server-core > '$BUILD_TMP/mysql.version'"
  version="$(cat "$BUILD_TMP/mysql.version")"
  [[ "$version" == "$MYSQL_SERIES".* ]] ||
    die "Debian $MYSQL_IMAGE_SUITE has mysql-server-core $version, not $MYSQL_SERIES.x: change MYSQL_SERIES and MYSQL_IMAGE in e2e/cluster"
  log "MySQL $version from Debian $MYSQL_IMAGE_SUITE"
  write_image "$BUILD_TMP/mysql.tar" "$MYSQL_IMAGE" "$out" --config.user 999:999 \
    --config.entrypoint /usr/sbin/mysqld --config.label "org.opencontainers.image.version=$version"
}

# etcd as quay.io/coreos/etcd ships it: etcd and etcdctl in /usr/local/bin, nothing else.
image_recipe_etcd() {
  local out="$1" b
  mkdir -p "$BUILD_TMP/etcd/usr/local/bin" "$BUILD_TMP/etcd/tmp" "$BUILD_TMP/etcd/var/etcd"
  chmod 1777 "$BUILD_TMP/etcd/tmp"
  for b in etcd etcdctl; do
    cp "$IMAGE_BIN_DIR/$b" "$BUILD_TMP/etcd/usr/local/bin/" || die "etcd $ETCD_IMAGE_VERSION is not built"
  done
  tar_dir "$BUILD_TMP/etcd" "$BUILD_TMP/etcd.tar"
  write_image "$BUILD_TMP/etcd.tar" "$ETCD_IMAGE" "$out" --config.entrypoint /usr/local/bin/etcd
}

# The Prometheus mysqld exporter, at /bin/mysqld_exporter as in prom/mysqld-exporter.
image_recipe_mysqld_exporter() {
  local out="$1"
  mkdir -p "$BUILD_TMP/exporter/bin" "$BUILD_TMP/exporter/tmp"
  chmod 1777 "$BUILD_TMP/exporter/tmp"
  cp "$IMAGE_BIN_DIR/mysqld_exporter" "$BUILD_TMP/exporter/bin/" || die "mysqld_exporter is not built"
  tar_dir "$BUILD_TMP/exporter" "$BUILD_TMP/exporter.tar"
  write_image "$BUILD_TMP/exporter.tar" "$MYSQLD_EXPORTER_IMAGE" "$out" \
    --config.entrypoint /bin/mysqld_exporter --config.user 65534:65534
}

# Builds every image that is not cached yet.
ensure_images() {
  local recipe ref archive t0
  mkdir -p "$IMAGES_DIR"
  while read -r recipe ref; do
    archive="$(image_archive "$recipe" "$ref")"
    [[ -f "$archive" ]] && continue
    t0=$SECONDS
    log "building image $ref"
    new_build_tmp
    "image_recipe_$recipe" "$archive"
    cleanup_build_tmp
    log "image $ref built in $((SECONDS - t0))s ($(du -h "$archive" | cut -f1))"
  done < <(image_list)
}

# Imports every image into the node's containerd unless this containerd already has that very
# archive (a record per image under the node's state, which goes with containerd's own).
import_images() {
  local recipe ref archive record t0
  mkdir -p "$NODE_DIR/imported"
  while read -r recipe ref; do
    archive="$(image_archive "$recipe" "$ref")"
    record="$NODE_DIR/imported/$(printf '%s' "$ref" | tr '/:' '__')"
    if [[ "$(cat "$record" 2>/dev/null)" == "$archive" ]] && node_ctr images check "name==$(full_ref "$ref")" 2>/dev/null | grep -q complete; then
      continue
    fi
    t0=$SECONDS
    node_ctr images import "$archive" >/dev/null ||
      die "importing $archive into containerd failed; see $(log_file containerd)"
    printf '%s\n' "$archive" >"$record"
    log "imported $ref into the real node's containerd ($((SECONDS - t0))s)"
  done < <(image_list)
}

# docker.io/library/mysql:9.7 for mysql:9.7, as containerd names it.
full_ref() {
  local ref="$1" first="${1%%/*}"
  if [[ "$ref" != */* ]]; then
    printf 'docker.io/library/%s' "$ref"
  elif [[ "$first" != *.* && "$first" != *:* && "$first" != localhost ]]; then
    printf 'docker.io/%s' "$ref"
  else
    printf '%s' "$ref"
  fi
}

# The directory of a downloaded Go module (downloads it if needed).
go_module_dir() {
  (cd "$BUILD_TMP" && GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
}
