#!/usr/bin/env bash
# Test infrastructure: a private Docker engine, a local base image and a local
# image registry for mlem_lib's tests.  Idempotent; safe to run from a fresh
# machine as root with no stdin (CI=true).  See scripts/README-docker.md.
#
#   scripts/docker-env.sh install      # apt-get what is missing
#   eval "$(scripts/docker-env.sh start)"       # -> export DOCKER_HOST=...
#   scripts/docker-env.sh base-image   # python:3.11-slim + mlem-test-base:latest
#   eval "$(scripts/docker-env.sh registry)"    # -> export MLEM_TEST_REGISTRY=...
#   eval "$(scripts/docker-env.sh all)"         # all of the above
#   scripts/docker-env.sh stop
#   scripts/docker-env.sh env|status|verify
#
# Only the `export ...` lines go to stdout; every other message goes to stderr.
# No traffic leaves the machine except apt/debootstrap (Debian mirror) and pip
# (package index) downloads; the engine and the registry only listen on a unix
# socket and on 127.0.0.1.
set -euo pipefail

DIR=${MLEM_DOCKER_DIR:-/tmp/mlem-docker}
DIR=${DIR%/}
SOCK="$DIR/docker.sock"
DOCKER_HOST_URL="unix://$SOCK"
DOCKERD_PID="$DIR/dockerd.pid"
DOCKERD_LOG="$DIR/dockerd.log"
START_TIMEOUT=${MLEM_DOCKER_START_TIMEOUT:-60}

BASE_IMAGE=${MLEM_BASE_IMAGE:-python:3.11-slim}
TEST_BASE_IMAGE=${MLEM_TEST_BASE_IMAGE:-mlem-test-base:latest}
SUITE=${MLEM_DEBIAN_SUITE:-bookworm}
DEBOOTSTRAP_INCLUDE=python3,python3-venv,python3-pip,ca-certificates
ROOTFS_TAR="$DIR/cache/rootfs-$SUITE-minbase.tar"
HOST_CA_BUNDLE=${MLEM_HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

REG_PORT=${MLEM_REGISTRY_PORT:-5055}
REG_USER=${MLEM_REGISTRY_USER:-mlem}
REG_PASS=${MLEM_REGISTRY_PASSWORD:-mlem-test-pass}
REG_DIR="$DIR/registry"
REG_PID="$DIR/registry-$REG_PORT.pid"
REG_LOG="$DIR/registry-$REG_PORT.log"
REG_ADDR="127.0.0.1:$REG_PORT"

export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a
# Anything we talk to locally must never go through a proxy.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"
# The docker CLI >= 23 wants buildx for `docker build`; there is none here.
export DOCKER_BUILDKIT=0

log() { printf '[docker-env] %s\n' "$*" >&2; }
die() { printf '[docker-env] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root"; }

# Prefer the CLI that ships with the daemon (docker.io); any docker CLI works.
docker_bin() {
  if [[ -x /usr/bin/docker ]]; then echo /usr/bin/docker
  elif command -v docker >/dev/null 2>&1; then command -v docker
  else die "no docker CLI found (run: $0 install)"; fi
}
dk() { "$(docker_bin)" -H "$DOCKER_HOST_URL" "$@"; }

# Serialise concurrent invocations (e.g. parallel test workers).  Background
# daemons are started with fd 9 closed so they never hold the lock.
lock() {
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"
  flock -w 600 9 || die "could not lock $DIR/.lock"
}

proc_alive() {  # pid -> 0 if running (a zombie waiting for its reaper is dead)
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(sed -n 's/.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

pid_alive() {  # pidfile -> 0 if the process in it is alive
  local pid
  [[ -s $1 ]] || return 1
  pid=$(tr -dc '0-9' <"$1")
  [[ -n $pid ]] && proc_alive "$pid"
}

# ----------------------------------------------------------------- install --
apt_updated=0
apt_install() {
  local log_file="$DIR/apt.log" policy_created=0
  mkdir -p "$DIR"
  # Never let a package's postinst start a system-wide dockerd/registry.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    policy_created=1
  fi
  local rc=0
  {
    if [[ $apt_updated -eq 0 ]]; then
      apt-get -o DPkg::Lock::Timeout=300 update -q && apt_updated=1
    fi &&
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@"
  } >>"$log_file" 2>&1 </dev/null || rc=$?
  [[ $policy_created -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
  if [[ $rc -ne 0 ]]; then
    tail -n 30 "$log_file" >&2
    die "apt-get install $* failed (full log: $log_file)"
  fi
}

cmd_install() {
  need_root
  local pkgs=() t0
  t0=$(now)
  command -v dockerd >/dev/null 2>&1 || pkgs+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || pkgs+=(debootstrap)
  command -v docker-registry >/dev/null 2>&1 || pkgs+=(docker-registry)
  command -v htpasswd >/dev/null 2>&1 || pkgs+=(apache2-utils)
  command -v flock >/dev/null 2>&1 || pkgs+=(util-linux)
  command -v curl >/dev/null 2>&1 || pkgs+=(curl)
  # the model page's test drives headless Chromium (tests/test_serve_page.py)
  command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
  [[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || pkgs+=(debian-archive-keyring)
  if [[ ${#pkgs[@]} -eq 0 ]]; then
    log "install: everything already present"
    return 0
  fi
  log "install: apt-get install ${pkgs[*]} ..."
  apt_install "${pkgs[@]}"
  log "install: done in $(elapsed "$t0") s"
}

# ------------------------------------------------------------------- start --
dockerd_up() { pid_alive "$DOCKERD_PID" && dk info >/dev/null 2>&1; }

unmount_under_dir() {
  # Mounts dockerd may leave behind (netns/default, overlay layers, shm).
  local m
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done < <(awk -v d="$DIR/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
}

cmd_start() {
  need_root
  command -v dockerd >/dev/null 2>&1 || die "dockerd not installed (run: $0 install)"
  lock
  if dockerd_up; then
    log "start: dockerd already running (pid $(cat "$DOCKERD_PID"))"
  else
    if pid_alive "$DOCKERD_PID"; then
      # Alive but not answering: give it the normal timeout before failing.
      log "start: dockerd pid $(cat "$DOCKERD_PID") alive but not answering yet; waiting"
    else
      local t0
      t0=$(now)
      rm -f "$DOCKERD_PID" "$SOCK"
      # A crashed dockerd can leave its containerd behind (or a zombie whose
      # pid still answers kill -0, which makes a new dockerd wait on it).
      stop_pid "$DIR/exec/containerd/containerd.pid" "stale containerd" 15
      unmount_under_dir
      mkdir -p "$DIR/data" "$DIR/exec"
      [[ -s $DIR/daemon.json ]] || echo '{}' >"$DIR/daemon.json"
      log "start: launching dockerd (state in $DIR, log $DOCKERD_LOG)"
      # setsid: survive the caller's process group; fds: nothing inherited, so
      # `eval "$(... start)"` returns at once and the lock is not held.
      setsid dockerd \
        --config-file "$DIR/daemon.json" \
        --data-root "$DIR/data" \
        --exec-root "$DIR/exec" \
        --pidfile "$DOCKERD_PID" \
        --host "$DOCKER_HOST_URL" \
        --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
        </dev/null >>"$DOCKERD_LOG" 2>&1 9>&- &
      local launcher=$! deadline=$((SECONDS + START_TIMEOUT))
      until dockerd_up; do
        if ! proc_alive "$launcher" && ! pid_alive "$DOCKERD_PID"; then
          tail -n 30 "$DOCKERD_LOG" >&2
          die "dockerd exited during startup (log: $DOCKERD_LOG)"
        fi
        ((SECONDS < deadline)) || { tail -n 30 "$DOCKERD_LOG" >&2; die "dockerd not ready after ${START_TIMEOUT}s"; }
        sleep 0.2
      done
      log "start: dockerd ready (pid $(cat "$DOCKERD_PID")) in $(elapsed "$t0") s"
    fi
    local deadline=$((SECONDS + START_TIMEOUT))
    until dockerd_up; do
      ((SECONDS < deadline)) || die "dockerd not answering on $SOCK"
      sleep 0.2
    done
  fi
  exec 9>&-
  echo "export DOCKER_HOST=$DOCKER_HOST_URL"
  echo "export DOCKER_BUILDKIT=0"
}

# -------------------------------------------------------------- base-image --
# First Debian mirror apt is configured with (one-line and deb822 formats).
# Pass 1: an entry for $SUITE; pass 2: any non-security deb entry.
apt_source_files() {
  local f
  [[ -r /etc/apt/sources.list ]] && echo /etc/apt/sources.list
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] && echo "$f"
  done | sort
}

mirror_from_file() {  # file strict(1|0)
  local f=$1 strict=$2
  if [[ $f == *.sources ]]; then
    awk -v s="$SUITE" -v strict="$strict" '
      BEGIN { RS = ""; FS = "\n" }
      {
        types = uris = suites = ""; enabled = "yes"; key = ""
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^#/) continue
          if (line ~ /^[ \t]/) { val = line }            # continuation line
          else {
            p = index(line, ":"); if (!p) continue
            key = tolower(substr(line, 1, p - 1)); val = substr(line, p + 1)
          }
          if (key == "types") types = types " " val
          else if (key == "uris") uris = uris " " val
          else if (key == "suites") suites = suites " " val
          else if (key == "enabled") { gsub(/[ \t]/, "", val); enabled = tolower(val) }
        }
        if (enabled == "no" || (" " types " ") !~ /[ \t]deb[ \t]/) next
        n = split(suites, ss, /[ \t]+/); ok = 0
        for (j = 1; j <= n; j++) {
          if (ss[j] == "") continue
          if (strict && ss[j] == s) ok = 1
          if (!strict && ss[j] !~ /security/) ok = 1
        }
        if (!ok) next
        m = split(uris, us, /[ \t]+/)
        for (j = 1; j <= m; j++) if (us[j] ~ /^(https?|file):/) { print us[j]; exit }
      }' "$f"
  else
    awk -v s="$SUITE" -v strict="$strict" '
      /^[ \t]*#/ { next }
      $1 == "deb" {
        i = 2
        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        uri = $i; suite = $(i + 1)
        if (uri !~ /^(https?|file):/) next
        if ((strict && suite == s) || (!strict && suite !~ /security/)) { print uri; exit }
      }' "$f"
  fi
}

debian_mirror() {
  if [[ -n ${MLEM_DEBIAN_MIRROR:-} ]]; then echo "$MLEM_DEBIAN_MIRROR"; return; fi
  local strict f m
  for strict in 1 0; do
    while read -r f; do
      m=$(mirror_from_file "$f" "$strict" | head -n 1)
      if [[ -n $m ]]; then echo "${m%/}"; return; fi
    done < <(apt_source_files)
  done
  echo http://deb.debian.org/debian
}

image_exists() { dk image inspect "$1" >/dev/null 2>&1; }

make_rootfs_tar() {
  local mirror rootfs="$DIR/rootfs.build" t0 keyring=()
  mirror=$(debian_mirror)
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap not installed (run: $0 install)"
  [[ -r /usr/share/keyrings/debian-archive-keyring.gpg ]] &&
    keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
  t0=$(now)
  log "base-image: debootstrap $SUITE from $mirror (~90 s, log $DIR/debootstrap.log)"
  unmount_under_dir
  rm -rf "$rootfs"
  mkdir -p "$DIR/cache"
  if ! debootstrap --variant=minbase --include="$DEBOOTSTRAP_INCLUDE" "${keyring[@]}" \
      "$SUITE" "$rootfs" "$mirror" </dev/null >"$DIR/debootstrap.log" 2>&1 9>&-; then
    tail -n 30 "$DIR/debootstrap.log" >&2
    [[ -r $rootfs/debootstrap/debootstrap.log ]] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
    unmount_under_dir
    rm -rf "$rootfs"
    die "debootstrap failed (log: $DIR/debootstrap.log)"
  fi
  unmount_under_dir   # debootstrap can leave proc/sys mounted on failure paths
  # Slim it and make it look like the official image where it is cheap to.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/root/.cache
  [[ -e $rootfs/usr/local/bin/python ]] || ln -s /usr/bin/python3 "$rootfs/usr/local/bin/python"
  tar --numeric-owner -C "$rootfs" -cf "$ROOTFS_TAR.tmp" .
  mv -f "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$rootfs"
  log "base-image: rootfs cached at $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1)) in $(elapsed "$t0") s"
}

# The host's pip settings that make sense inside a container: network indexes,
# trusted hosts, proxy, timeouts.  Local paths (file:// indexes, find-links,
# constraint files, cert) do not exist in the image and are dropped; the CA
# bundle is copied in separately.
host_pip_conf() {
  python3 - <<'PY'
import configparser, os, re, shlex, subprocess, sys

keep = {"index-url", "extra-index-url", "trusted-host", "proxy", "timeout",
        "default-timeout", "retries"}
vals = {}

def add(key, value):
    key = key.replace("_", "-").lower()
    if key == "default-timeout":
        key = "timeout"
    if key in keep:
        vals[key] = value

# pip's own merged view (files in precedence order + PIP_* env)
out = ""
for cmd in (["pip", "config", "list"], [sys.executable, "-m", "pip", "config", "list"]):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL).stdout
        if out.strip():
            break
    except Exception:
        pass
if out.strip():
    # lines: scope.key='value' (files already merged); pip's precedence is
    # PIP_* env > [install] > [global]
    rank = {"global": 0, "install": 1, ":env:": 2}
    entries = []
    for line in out.splitlines():
        m = re.match(r"^([^.]*)\.([A-Za-z0-9_-]+)=(.*)$", line.strip())
        if not m or m.group(1) not in rank:
            continue
        v = m.group(3)
        try:
            v = shlex.split(v)[0] if v else ""
        except ValueError:
            v = v.strip("'\"")
        entries.append((rank[m.group(1)], m.group(2), v))
    for _, k, v in sorted(entries, key=lambda e: e[0]):
        add(k, v)
else:
    home = os.path.expanduser("~")
    files = ["/etc/xdg/pip/pip.conf", "/etc/pip.conf",
             os.path.join(home, ".pip/pip.conf"),
             os.path.join(home, ".config/pip/pip.conf")]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(os.environ["PIP_CONFIG_FILE"])
    for f in files:
        cp = configparser.RawConfigParser()
        try:
            cp.read(f)
        except Exception:
            continue
        for sec in ("global", "install"):
            if cp.has_section(sec):
                for k, v in cp.items(sec):
                    add(k, v)
    for k, v in os.environ.items():
        if k.startswith("PIP_"):
            add(k[4:], v)

def network_urls(v):
    return [u for u in v.split() if re.match(r"^https?://", u)]

lines = ["[global]"]
for key in ("index-url", "extra-index-url"):
    if key in vals:
        urls = network_urls(vals[key])
        if key == "index-url":
            urls = urls[:1]
        if urls:
            lines.append(f"{key} = {' '.join(urls)}")
for key in ("trusted-host", "proxy", "timeout", "retries"):
    if vals.get(key):
        lines.append(f"{key} = {vals[key]}")
lines.append("disable-pip-version-check = true")
print("\n".join(lines))
PY
}

build_test_base() {
  local ctx="$DIR/test-base-ctx" var
  rm -rf "$ctx"
  mkdir -p "$ctx"
  if [[ -r $HOST_CA_BUNDLE ]]; then
    cp "$HOST_CA_BUNDLE" "$ctx/ca-certificates.crt"
  else
    log "base-image: WARNING no host CA bundle at $HOST_CA_BUNDLE; using the image's own"
    : >"$ctx/ca-certificates.crt"
  fi
  host_pip_conf >"$ctx/pip.conf"
  {
    echo "# Test-only layer: never part of a Dockerfile that mlem_lib generates."
    echo "FROM $BASE_IMAGE"
    if [[ -s $ctx/ca-certificates.crt ]]; then
      echo "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt"
    fi
    echo "COPY pip.conf /etc/pip.conf"
    echo "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \\"
    echo "    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \\"
    echo "    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \\"
    echo "    PIP_DEFAULT_TIMEOUT=${PIP_DEFAULT_TIMEOUT:-180} \\"
    echo "    PIP_DISABLE_PIP_VERSION_CHECK=1"
    # A proxy the host's pip relies on is needed inside the build too.
    for var in HTTPS_PROXY https_proxy HTTP_PROXY http_proxy; do
      if [[ -n ${!var:-} ]]; then
        echo "ENV $var=${!var} NO_PROXY=$NO_PROXY no_proxy=$NO_PROXY"
      fi
    done
  } >"$ctx/Dockerfile"
  log "base-image: building $TEST_BASE_IMAGE (pip.conf: $(grep -v '^\[' "$ctx/pip.conf" | tr '\n' ';'))"
  dk build -q --network host -t "$TEST_BASE_IMAGE" "$ctx" >/dev/null </dev/null 9>&- ||
    die "building $TEST_BASE_IMAGE failed"
}

cmd_verify_build() {
  local ctx="$DIR/verify-ctx" t0 out
  t0=$(now)
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cat >"$ctx/Dockerfile" <<EOF
FROM $TEST_BASE_IMAGE
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir six
RUN /opt/venv/bin/python -c "import six; print('six', six.__version__)"
EOF
  if ! out=$(dk build --network host -t mlem-test-verify:latest "$ctx" </dev/null 2>&1 9>&-); then
    printf '%s\n' "$out" | tail -n 30 >&2
    die "verification build (pip install six inside docker) failed"
  fi
  dk run --rm --network host mlem-test-verify:latest /opt/venv/bin/python -c 'import six' </dev/null 9>&- ||
    die "verification container failed"
  log "verify: build FROM $TEST_BASE_IMAGE with pip install six OK in $(elapsed "$t0") s"
}

cmd_base_image() {
  need_root
  cmd_start >/dev/null
  lock
  local t0
  t0=$(now)
  if image_exists "$BASE_IMAGE" && [[ -z ${MLEM_REBUILD_BASE:-} ]]; then
    log "base-image: $BASE_IMAGE already present"
  else
    [[ -s $ROOTFS_TAR && -z ${MLEM_REBUILD_BASE:-} ]] || make_rootfs_tar
    log "base-image: docker import $ROOTFS_TAR as $BASE_IMAGE"
    dk import \
      --change 'ENV LANG=C.UTF-8' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["python3"]' \
      "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null </dev/null 9>&-
  fi
  build_test_base
  cmd_verify_build
  exec 9>&-
  log "base-image: $BASE_IMAGE and $TEST_BASE_IMAGE ready in $(elapsed "$t0") s"
  echo "export DOCKER_HOST=$DOCKER_HOST_URL"
  echo "export DOCKER_BUILDKIT=0"
  echo "export MLEM_TEST_BASE_IMAGE=$TEST_BASE_IMAGE"
}

# ---------------------------------------------------------------- registry --
reg_status() {  # HTTP status of /v2/ with (1) or without (0) credentials
  local auth=()
  [[ $1 == 1 ]] && auth=(-u "$REG_USER:$REG_PASS")
  curl -s --noproxy '*' --max-time 3 -o /dev/null -w '%{http_code}' "${auth[@]}" \
    "http://$REG_ADDR/v2/" 2>/dev/null || true
}

registry_exports() {
  echo "export MLEM_TEST_REGISTRY=$REG_ADDR"
  echo "export MLEM_TEST_REGISTRY_USER=$REG_USER"
  echo "export MLEM_TEST_REGISTRY_PASSWORD=$REG_PASS"
}

stop_pid() {  # pidfile name timeout
  local pidfile=$1 name=$2 timeout=$3 pid
  if ! pid_alive "$pidfile"; then
    rm -f "$pidfile"
    return 0
  fi
  pid=$(tr -dc '0-9' <"$pidfile")
  log "stop: $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while proc_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "stop: $name did not exit in ${timeout}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
}

cmd_registry() {
  need_root
  command -v docker-registry >/dev/null 2>&1 || die "docker-registry not installed (run: $0 install)"
  command -v htpasswd >/dev/null 2>&1 || die "htpasswd not installed (run: $0 install)"
  lock
  if pid_alive "$REG_PID" && [[ $(reg_status 1) == 200 ]]; then
    log "registry: already running on $REG_ADDR (pid $(cat "$REG_PID"))"
  else
    # Running with other credentials or wedged: restart it.
    stop_pid "$REG_PID" registry 15
    local code
    code=$(reg_status 0)
    [[ $code == 000 || -z $code ]] || die "port $REG_PORT is already in use by something else (HTTP $code)"
    local t0
    t0=$(now)
    mkdir -p "$REG_DIR/storage"
    htpasswd -Bbn "$REG_USER" "$REG_PASS" >"$REG_DIR/htpasswd-$REG_PORT"
    cat >"$REG_DIR/config-$REG_PORT.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REG_DIR/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $REG_ADDR
  secret: mlem-test-registry-secret
auth:
  htpasswd:
    realm: mlem-test-registry
    path: $REG_DIR/htpasswd-$REG_PORT
EOF
    log "registry: starting docker-registry on $REG_ADDR (log $REG_LOG)"
    setsid docker-registry serve "$REG_DIR/config-$REG_PORT.yml" </dev/null >>"$REG_LOG" 2>&1 9>&- &
    local pid=$!
    echo "$pid" >"$REG_PID"
    local deadline=$((SECONDS + 30))
    until [[ $(reg_status 1) == 200 ]]; do
      if ! proc_alive "$pid"; then
        rm -f "$REG_PID"
        tail -n 20 "$REG_LOG" >&2
        die "docker-registry exited during startup (log: $REG_LOG)"
      fi
      ((SECONDS < deadline)) || { tail -n 20 "$REG_LOG" >&2; die "registry not ready after 30s"; }
      sleep 0.2
    done
    [[ $(reg_status 0) == 401 ]] || die "registry on $REG_ADDR answers without credentials"
    log "registry: ready (pid $pid) in $(elapsed "$t0") s"
  fi
  if dockerd_up; then
    verify_registry_push
  else
    log "registry: dockerd not running; skipping the login/push check"
  fi
  exec 9>&-
  registry_exports
}

verify_registry_push() {
  # Private client config: the check must not touch the user's ~/.docker.
  local cfg="$DIR/docker-client-config" ctx="$DIR/smoke-image" ref="$REG_ADDR/mlem-smoke:latest" d t0
  t0=$(now)
  d=$(docker_bin)
  mkdir -p "$cfg" "$ctx"
  if ! image_exists mlem-smoke:latest; then
    echo "mlem registry smoke test" >"$ctx/hello.txt"
    tar -C "$ctx" -cf - hello.txt | dk import - mlem-smoke:latest >/dev/null 9>&-
  fi
  dk tag mlem-smoke:latest "$ref"
  printf '%s' "$REG_PASS" | DOCKER_CONFIG=$cfg "$d" -H "$DOCKER_HOST_URL" \
    login -u "$REG_USER" --password-stdin "$REG_ADDR" >/dev/null 2>&1 9>&- ||
    die "docker login $REG_ADDR failed"
  DOCKER_CONFIG=$cfg "$d" -H "$DOCKER_HOST_URL" push "$ref" </dev/null >/dev/null 2>&1 9>&- ||
    die "docker push $ref failed"
  local code
  code=$(curl -s --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}' -u "$REG_USER:$REG_PASS" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REG_ADDR/v2/mlem-smoke/manifests/latest" || true)
  [[ $code == 200 ]] || die "pushed manifest not found in the registry (HTTP $code)"
  dk rmi "$ref" >/dev/null 2>&1 || true
  log "registry: docker login + push to $REG_ADDR OK in $(elapsed "$t0") s"
}

# -------------------------------------------------------------------- stop --
cmd_stop() {
  need_root
  lock
  local f
  for f in "$DIR"/registry-*.pid; do
    [[ -e $f ]] && stop_pid "$f" "registry ${f##*/}" 15
  done
  local containerd_pid="$DIR/exec/containerd/containerd.pid" running
  if dockerd_up; then
    # Kill leftover containers first: dockerd would wait 10 s per container
    # whose PID 1 ignores SIGTERM.
    running=$(dk ps -q 2>/dev/null || true)
    if [[ -n $running ]]; then
      log "stop: killing running containers: ${running//$'\n'/ }"
      # shellcheck disable=SC2086
      dk kill $running >/dev/null 2>&1 9>&- || true
    fi
  fi
  stop_pid "$DOCKERD_PID" dockerd 45
  # dockerd's managed containerd normally exits with it; make sure.
  stop_pid "$containerd_pid" containerd 15
  unmount_under_dir
  rm -f "$SOCK"
  exec 9>&-
  log "stop: done"
}

cmd_status() {
  if dockerd_up; then log "dockerd: running (pid $(cat "$DOCKERD_PID")) on $DOCKER_HOST_URL"
  else log "dockerd: not running"; fi
  if pid_alive "$REG_PID" && [[ $(reg_status 1) == 200 ]]; then
    log "registry: running (pid $(cat "$REG_PID")) on $REG_ADDR"
  else log "registry: not running"; fi
  if dockerd_up; then
    local i
    for i in "$BASE_IMAGE" "$TEST_BASE_IMAGE"; do
      if image_exists "$i"; then log "image $i: present"; else log "image $i: missing"; fi
    done
  fi
  dockerd_up
}

cmd_env() {
  echo "export DOCKER_HOST=$DOCKER_HOST_URL"
  echo "export DOCKER_BUILDKIT=0"
  echo "export MLEM_TEST_BASE_IMAGE=$TEST_BASE_IMAGE"
  registry_exports
}

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
}

main() {
  local cmd=${1:-}
  case $cmd in
    install) cmd_install ;;
    start) cmd_start ;;
    base-image) cmd_base_image ;;
    registry) cmd_registry ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    verify) need_root; cmd_start >/dev/null; cmd_verify_build ;;
    all)
      local t0
      t0=$(now)
      cmd_install
      cmd_start >/dev/null
      cmd_base_image >/dev/null
      cmd_registry >/dev/null
      log "all: ready in $(elapsed "$t0") s"
      cmd_env
      ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
