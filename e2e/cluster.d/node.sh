# e2e/cluster.d/node.sh — the real node beside the KWOK nodes: containerd + runc (Debian's),
# the CNI bridge, kubelet and kube-proxy (from the Kubernetes module of the control plane) and
# CoreDNS. Sourced by e2e/cluster; uses its pins, log/die, start_process and kubectl_e2e.
#
# Everything stays on this machine: pods get addresses on a Linux bridge that only this
# machine has ($NODE_BRIDGE, $NODE_POD_CIDR), Services are this machine's iptables rules, and
# the FORWARD chain lets packets move between pods only: nothing is routed between the bridge
# and any other interface, and nothing is masqueraded to one. This machine's own packets to a
# pod or Service address that is not on the bridge (a KWOK pod's made-up address, a Service
# with no real endpoint) are refused rather than sent to the default route.

NODE_DIR="$STATE_DIR/node"
CONTAINERD_SOCK="$NODE_DIR/containerd/containerd.sock"
NODE_COMPONENTS=(volume-permissions containerd kubelet coredns kube-proxy gcs s3 external-mysql)
# Where kube-controller-manager's in-tree hostPath provisioner makes every PV (its own path).
HOSTPATH_PV_DIR=/tmp/hostpath_pv
# The FORWARD and OUTPUT rules of the real node (see ensure_node_network).
NODE_FORWARD_CHAIN=E2E-REAL-NODE
NODE_OUTPUT_CHAIN=E2E-REAL-NODE-OUT
NODE_APISERVER_CHAIN=E2E-REAL-NODE-API

node_ctr() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
node_crictl() { "$BIN_DIR/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" --timeout 30s "$@"; }

# The prefix length of the pod network, e.g. 24.
node_prefix() { printf '%s' "${NODE_POD_CIDR#*/}"; }

# Root, and the Debian packages the node needs (installed with apt-get when missing).
ensure_node_prereqs() {
  [[ "$(id -u)" == 0 ]] ||
    die "the real node needs root (containerd, kubelet, iptables, network namespaces); run as root, or use 'e2e/cluster up --no-real-node'"
  [[ -d /sys/fs/cgroup/memory || -f /sys/fs/cgroup/cgroup.controllers ]] ||
    die "the real node needs cgroups (no /sys/fs/cgroup/memory); use 'e2e/cluster up --no-real-node'"
  local missing=() pair
  for pair in containerd:containerd runc:runc ctr:containerd /usr/lib/cni/bridge:containernetworking-plugins \
    iptables:iptables conntrack:conntrack ip:iproute2 findmnt:util-linux mmdebstrap:mmdebstrap \
    umoci:umoci skopeo:skopeo inotifywait:inotify-tools gcc:gcc /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev; do
    if [[ "${pair%%:*}" == /* ]]; then
      [[ -e "${pair%%:*}" ]] || missing+=("${pair##*:}")
    else
      command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
    fi
  done
  if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    log "installing Debian packages for the real node: ${missing[*]}"
    mkdir -p "$LOG_DIR"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
      >>"$(log_file apt)" 2>&1 || die "apt-get install ${missing[*]} failed; see $(log_file apt)"
  fi
}

# The bridge the pods attach to (made here, so the node's address exists before kubelet and
# CoreDNS start), forwarding for Services, and the FORWARD rules that keep pod traffic on it.
ensure_node_network() {
  sysctl -qw net.ipv4.ip_forward=1 || die "cannot enable IPv4 forwarding (sysctl net.ipv4.ip_forward)"
  if [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
    sysctl -qw net.bridge.bridge-nf-call-iptables=1
  fi
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODE_BRIDGE" type bridge || die "cannot create bridge $NODE_BRIDGE"
  fi
  if ! ip -4 addr show dev "$NODE_BRIDGE" | grep -q "inet $NODE_IP/"; then
    ip addr add "$NODE_IP/$(node_prefix)" dev "$NODE_BRIDGE" || die "cannot address bridge $NODE_BRIDGE"
  fi
  ip link set "$NODE_BRIDGE" up
  # Pods reach the API server as in any cluster, through the `kubernetes` Service (the
  # operator's own pods in e2e/demo do). The API server listens on 127.0.0.1 only and gives
  # that Service no endpoint at a loopback address, so the Service is translated here, for
  # pods only; and a packet from the bridge to a loopback address is routed only when the
  # bridge accepts them (route_localnet, which kube-proxy sets for NodePorts on localhost).
  sysctl -qw "net.ipv4.conf.$NODE_BRIDGE.route_localnet=1" ||
    die "cannot set net.ipv4.conf.$NODE_BRIDGE.route_localnet"
  iptables -w -t nat -N "$NODE_APISERVER_CHAIN" 2>/dev/null || true
  iptables -w -t nat -F "$NODE_APISERVER_CHAIN"
  iptables -w -t nat -A "$NODE_APISERVER_CHAIN" -i "$NODE_BRIDGE" -d "$SERVICE_API_IP" -p tcp --dport 443 \
    -j DNAT --to-destination "127.0.0.1:$APISERVER_PORT"
  iptables -w -t nat -C PREROUTING -j "$NODE_APISERVER_CHAIN" 2>/dev/null ||
    iptables -w -t nat -I PREROUTING 1 -j "$NODE_APISERVER_CHAIN"
  # Between pods (and to Services, which kube-proxy turns into pods): yes. Anything else that
  # would be forwarded (the bridge to another interface, or anything not on the bridge): no.
  iptables -w -N "$NODE_FORWARD_CHAIN" 2>/dev/null || true
  iptables -w -F "$NODE_FORWARD_CHAIN"
  iptables -w -A "$NODE_FORWARD_CHAIN" -i "$NODE_BRIDGE" -o "$NODE_BRIDGE" -j RETURN
  iptables -w -A "$NODE_FORWARD_CHAIN" -j DROP
  iptables -w -C FORWARD -j "$NODE_FORWARD_CHAIN" 2>/dev/null ||
    iptables -w -I FORWARD 1 -j "$NODE_FORWARD_CHAIN"
  # After kube-proxy's DNAT (nat OUTPUT runs before filter OUTPUT, which sees the new address
  # but still the old route's interface): a pod address off the bridge, or a Service address
  # nothing translated, goes nowhere.
  iptables -w -N "$NODE_OUTPUT_CHAIN" 2>/dev/null || true
  iptables -w -F "$NODE_OUTPUT_CHAIN"
  iptables -w -A "$NODE_OUTPUT_CHAIN" -d "$NODE_POD_CIDR" -j RETURN
  iptables -w -A "$NODE_OUTPUT_CHAIN" -d "$CLUSTER_CIDR" -j REJECT
  iptables -w -A "$NODE_OUTPUT_CHAIN" -d "$SERVICE_CIDR" -j REJECT
  iptables -w -C OUTPUT -j "$NODE_OUTPUT_CHAIN" 2>/dev/null ||
    iptables -w -I OUTPUT 1 -j "$NODE_OUTPUT_CHAIN"
}

# Writes stdin to a file unless the file already says exactly that: kube-proxy exits when its
# configuration file is written, and a changed file restarts its component (spec_changed).
write_if_changed() { # write_if_changed <file>
  local file="$1"
  cat >"$file.new"
  if cmp -s "$file.new" "$file"; then rm -f "$file.new"; else mv -f "$file.new" "$file"; fi
}

write_node_configs() {
  mkdir -p "$NODE_DIR"/{containerd,cni/net.d,cni/ipam,kubelet,kube-proxy,coredns,pod-logs}
  write_if_changed "$NODE_DIR/containerd/config.toml" <<EOF
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  # Nothing can be pulled here: the sandbox image is built and imported by e2e/cluster.
  sandbox_image = "$PAUSE_IMAGE"
  # This sandbox refuses negative oom_score_adj (the pause container asks for -998); without
  # this every sandbox fails with runc's "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
EOF
  write_if_changed "$NODE_DIR/cni/net.d/10-e2e.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE_DIR/cni/ipam",
        "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # Pods with dnsPolicy Default get this (nothing outside the machine to ask).
  : >"$NODE_DIR/kubelet/resolv.conf"
  # What a pod with dnsPolicy ClusterFirst has, for processes of this machine that stand in for
  # one (the e2e tests run the operator with it bind-mounted over /etc/resolv.conf in a mount
  # namespace of its own, so `<service>.<namespace>.svc` resolves as in a pod).
  write_if_changed "$NODE_DIR/cluster-resolv.conf" <<EOF
nameserver $DNS_SERVICE_IP
search svc.cluster.local cluster.local
options ndots:5
EOF
  write_if_changed "$NODE_DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has the cgroup v1 hierarchy and no systemd.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
# Only the API server (its kubelet client certificate, signed by the cluster CA) may call it.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI_DIR/ca.crt}
authorization: {mode: AlwaysAllow}
registerWithTaints:
- {key: $REAL_NODE_TAINT, effect: NoSchedule}
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: cluster.local
resolvConf: $NODE_DIR/kubelet/resolv.conf
podLogsDir: $NODE_DIR/pod-logs
maxPods: 110
enforceNodeAllocatable: []
cgroupsPerQOS: true
localStorageCapacityIsolation: false
# Images cannot be pulled again, so they are never collected.
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
shutdownGracePeriod: 0s
EOF
  write_if_changed "$NODE_DIR/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $KUBECONFIG_FILE}
hostnameOverride: $REAL_NODE
mode: iptables
clusterCIDR: $CLUSTER_CIDR
healthzBindAddress: 127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
nodePortAddresses: [$NODE_IP/32]
# 0: leave the machine's conntrack settings as they are (this sandbox may refuse them).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {minSyncPeriod: 1s, syncPeriod: 30s}
EOF
  write_if_changed "$NODE_DIR/coredns/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:$COREDNS_HEALTH_PORT
    ready 127.0.0.1:$COREDNS_READY_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_FILE vitess-operator-e2e
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
EOF
}

# The PVs of the default StorageClass are hostPath directories that kube-controller-manager
# makes root's with mode 0750, and kubelet applies no fsGroup to hostPath volumes: a pod that
# runs as the vitess user (999) could not write its data volume, nor its subPath (kubelet makes
# a subPath with the mode of the volume's root). This opens each new PV directory to 0777, as
# local-path-provisioner (kind's default) makes them. It stands in for a storage driver that
# honours fsGroup; nothing here changes what the operator asks of Kubernetes.
VOLUME_PERMISSIONS_SCRIPT='trap "kill 0" TERM INT
dir="$1"
mkdir -p "$dir"
inotifywait --monitor --quiet --event create --event moved_to --format "%w%f" "$dir" |
  while IFS= read -r path; do [[ -d "$path" ]] && chmod 0777 "$path"; done &
sleep 0.5
find "$dir" -mindepth 1 -maxdepth 1 -type d ! -perm 0777 -exec chmod 0777 {} +
wait'

start_volume_permissions() {
  start_process volume-permissions -c "$VOLUME_PERMISSIONS_SCRIPT" volume-permissions "$HOSTPATH_PV_DIR"
}

start_containerd() {
  start_process containerd --config "$NODE_DIR/containerd/config.toml" --log-level warn
}

start_kubelet() {
  start_process kubelet \
    --config "$NODE_DIR/kubelet/config.yaml" \
    --kubeconfig "$KUBECONFIG_FILE" \
    --hostname-override "$REAL_NODE" \
    --node-ip "$NODE_IP" \
    --root-dir "$NODE_DIR/kubelet/root" \
    --cert-dir "$NODE_DIR/kubelet/pki" \
    --node-labels "type=real,topology.kubernetes.io/zone=$REAL_NODE_ZONE,topology.kubernetes.io/region=e2e" \
    --v 1
}

start_kube_proxy() {
  start_process kube-proxy --config "$NODE_DIR/kube-proxy/config.yaml" --v 1
}

start_coredns() {
  start_process coredns -conf "$NODE_DIR/coredns/Corefile"
}

# The GCS JSON-API server backups go to: on the node's address, so pods reach it; objects on
# disk under the state directory (kept by `down`, removed by `down --purge`). Plain HTTP, as
# the Go storage client speaks to an emulator; uploads come back to the same address.
start_gcs() {
  mkdir -p "$STATE_DIR/gcs"
  start_process gcs -backend filesystem -filesystem-root "$STATE_DIR/gcs" -scheme http \
    -host "$NODE_IP" -port "$GCS_PORT" -public-host "$NODE_IP:$GCS_PORT" \
    -external-url "http://$NODE_IP:$GCS_PORT" -log-level warn
}

# The S3 API server backups go to, beside it: path-style buckets, objects in a bolt database
# under the state directory.
start_s3() {
  mkdir -p "$STATE_DIR/s3"
  start_process s3 -host "$NODE_IP:$S3_PORT" -backend bolt -bolt.db "$STATE_DIR/s3/objects.db" -quiet
}

# A MySQL outside the cluster, for tablet pools with `externalDatastore` (as a user's RDS or
# Cloud SQL primary would be): the mysql image's own mysqld, run as a process of this machine
# at the node's address. Its root file system is the image's one layer, unpacked once per
# archive; mysqld runs through that root's dynamic loader (the image is newer Debian than
# this machine), its data under the state directory. An init file makes the admin account
# the tests use at every start.
EXTERNAL_MYSQL_DIR="$STATE_DIR/external-mysql"
EXTERNAL_MYSQL_ROOT="$EXTERNAL_MYSQL_DIR/root"
EXTERNAL_MYSQL_LOADER="$EXTERNAL_MYSQL_ROOT/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"

ensure_external_mysql_root() {
  local archive layer record="$EXTERNAL_MYSQL_DIR/root.from"
  archive="$(image_archive mysql "$MYSQL_IMAGE")"
  [[ "$(cat "$record" 2>/dev/null)" == "$archive" && -x "$EXTERNAL_MYSQL_LOADER" ]] && return 0
  log "unpacking $MYSQL_IMAGE for the external MySQL"
  layer="$(tar -xOf "$archive" manifest.json | sed -n 's/.*"Layers":\["\([^"]*\)".*/\1/p')"
  [[ -n "$layer" ]] || die "no layer in $archive's manifest.json"
  rm -rf "$EXTERNAL_MYSQL_ROOT" "$EXTERNAL_MYSQL_DIR/data"
  mkdir -p "$EXTERNAL_MYSQL_ROOT"
  tar -xOf "$archive" "$layer" | tar -x -C "$EXTERNAL_MYSQL_ROOT" || die "unpacking $archive failed"
  printf '%s\n' "$archive" >"$record"
}

# mysqld's arguments through the loader: the files it reads come from the image's root.
external_mysqld() { # external_mysqld <mysqld option>...
  local root="$EXTERNAL_MYSQL_ROOT"
  printf '%s\0' --library-path "$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu" \
    "$root/usr/sbin/mysqld" --no-defaults --user=root --basedir="$root/usr" \
    --lc-messages-dir="$root/usr/share/mysql" --character-sets-dir="$root/usr/share/mysql/charsets" \
    --plugin-dir="$root/usr/lib/mysql/plugin" --datadir="$EXTERNAL_MYSQL_DIR/data" "$@"
}

start_external_mysql() {
  local args
  if ((!SPEC_ONLY)); then
    ensure_external_mysql_root
    mkdir -p "$EXTERNAL_MYSQL_DIR/tmp"
    if [[ ! -d "$EXTERNAL_MYSQL_DIR/data/mysql" ]]; then
      log "initializing the external MySQL's data"
      rm -rf "$EXTERNAL_MYSQL_DIR/data"
      mapfile -d '' args < <(external_mysqld --initialize-insecure)
      "$EXTERNAL_MYSQL_LOADER" "${args[@]}" >>"$(log_file external-mysql)" 2>&1 ||
        die "initializing the external MySQL failed; see $(log_file external-mysql)"
    fi
    cat >"$EXTERNAL_MYSQL_DIR/init.sql" <<SQL
CREATE USER IF NOT EXISTS '$EXTERNAL_MYSQL_ADMIN'@'%' IDENTIFIED BY '$EXTERNAL_MYSQL_ADMIN_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$EXTERNAL_MYSQL_ADMIN'@'%' WITH GRANT OPTION;
SQL
  fi
  mapfile -d '' args < <(external_mysqld --bind-address="$NODE_IP" --port="$EXTERNAL_MYSQL_PORT" \
    --socket="$EXTERNAL_MYSQL_DIR/mysqld.sock" --pid-file="$EXTERNAL_MYSQL_DIR/mysqld.pid" \
    --tmpdir="$EXTERNAL_MYSQL_DIR/tmp" --secure-file-priv="$EXTERNAL_MYSQL_DIR/tmp" \
    --mysqlx=OFF --skip-name-resolve \
    --gtid-mode=ON --enforce-gtid-consistency=ON --innodb-buffer-pool-size=64M \
    --init-file="$EXTERNAL_MYSQL_DIR/init.sql")
  start_process external-mysql "${args[@]}"
}

# The cluster DNS Service: CoreDNS runs on this machine at the node's address, so the Service
# has no selector and one EndpointSlice of ours.
dns_objects() {
  cat <<EOF
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  clusterIP: $DNS_SERVICE_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-e2e
  namespace: kube-system
  labels:
    kubernetes.io/service-name: kube-dns
    endpointslice.kubernetes.io/managed-by: e2e-cluster
addressType: IPv4
endpoints:
- addresses: [$NODE_IP]
  conditions: {ready: true}
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
EOF
}

# The node's Ready condition as one line ("False KubeletNotReady: container runtime ...").
node_ready_condition() {
  kubectl_e2e get node "$REAL_NODE" \
    -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.reason}: {.message}{end}' 2>/dev/null
}

# Waits until kubelet reports the node Ready, saying what it waits for when that changes. If
# kubelet dies, or the time runs out, says what the node last reported, what kubelet's process
# is doing and the logs' ends (a CI log is all there is of that machine), and returns 1.
wait_node_ready() { # wait_node_ready <timeout seconds>
  local timeout="$1" start=$SECONDS seen="" now pid
  while :; do
    now="$(node_ready_condition)"
    if [[ "$now" == True\ * ]]; then
      log "node $REAL_NODE is Ready ($((SECONDS - start))s after kubelet started answering)"
      return 0
    fi
    if [[ "$now" != "$seen" ]]; then
      log "node $REAL_NODE after $((SECONDS - start))s: Ready=${now:-(no condition yet)}"
      seen="$now"
    fi
    if ! pid="$(component_pid kubelet)"; then
      tail -n 40 "$(log_file kubelet)" >&2 || true
      log "kubelet exited before node $REAL_NODE became Ready; see $(log_file kubelet)"
      return 1
    fi
    if ((SECONDS - start >= timeout)); then
      kubectl_e2e get node "$REAL_NODE" -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}' >&2 || true
      ps -o pid,stat,etime,rss,wchan:32,cmd -p "$pid" >&2 || true
      grep -E '^[EW][0-9]{4} ' "$(log_file kubelet)" | tail -n 25 >&2 || true
      tail -n 15 "$(log_file kubelet)" >&2 || true
      tail -n 15 "$(log_file containerd)" >&2 || true
      log "node $REAL_NODE did not become Ready in ${timeout}s (last: ${now:-no Ready condition}, kubelet pid $pid); see $(log_file kubelet) and $(log_file containerd)"
      return 1
    fi
    sleep 1
  done
}

# Starts (or repairs) the real node, after the control plane is up.
ensure_real_node() {
  local t0=$SECONDS
  ensure_node_prereqs
  ensure_images
  ensure_node_network
  write_node_configs
  ensure_component volume-permissions 10
  ensure_component containerd 30
  import_images
  ensure_component kubelet 60
  # Once, a kubelet that went silent or died before the node was Ready is started again (a
  # CI machine saw one stop logging right after it registered the node); twice is a failure.
  if ! wait_node_ready 120; then
    log "WARNING: restarting kubelet once (its log goes on in $(log_file kubelet))"
    stop_component kubelet
    ensure_component kubelet 60
    wait_node_ready 120 ||
      die "node $REAL_NODE did not become Ready, twice; see $(log_file kubelet) and $(log_file containerd)"
  fi
  dns_objects | kubectl_e2e apply --server-side --field-manager e2e-cluster -f - >/dev/null ||
    die "cannot apply the kube-dns Service"
  ensure_component coredns 30
  ensure_component kube-proxy 60
  ensure_component gcs 30
  ensure_component s3 30
  ensure_component external-mysql 60
  log "real node $REAL_NODE is Ready ($((SECONDS - t0))s)"
}

# Stops every container of the node through the CRI (so the CNI releases the pod addresses),
# then any shim of this containerd that is left.
stop_node_pods() {
  if component_pid containerd >/dev/null && [[ -x "$BIN_DIR/crictl" ]]; then
    local ids
    ids="$(node_crictl ps -q 2>/dev/null)" || true
    [[ -n "$ids" ]] && { node_crictl stop --timeout 10 $ids >/dev/null 2>&1 || true; }
    ids="$(node_crictl pods -q 2>/dev/null)" || true
    if [[ -n "$ids" ]]; then
      log "stopping the real node's pods"
      node_crictl stopp $ids >/dev/null 2>&1 || true
      node_crictl rmp --force $ids >/dev/null 2>&1 || true
    fi
  fi
  local pid
  for pid in $(pgrep -f "containerd-shim.*-address $CONTAINERD_SOCK" 2>/dev/null); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# What `down --purge` removes besides the state directory: mounts under it, the bridge, and
# the iptables rules of the node and of kube-proxy.
purge_real_node() {
  local m
  for m in $(findmnt -rn -o TARGET 2>/dev/null | grep -F "$NODE_DIR/" | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  if [[ -x "$BIN_DIR/kube-proxy" ]] && command -v iptables >/dev/null 2>&1; then
    "$BIN_DIR/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  if command -v iptables >/dev/null 2>&1; then
    iptables -w -D FORWARD -j "$NODE_FORWARD_CHAIN" 2>/dev/null || true
    iptables -w -F "$NODE_FORWARD_CHAIN" 2>/dev/null || true
    iptables -w -X "$NODE_FORWARD_CHAIN" 2>/dev/null || true
    iptables -w -D OUTPUT -j "$NODE_OUTPUT_CHAIN" 2>/dev/null || true
    iptables -w -F "$NODE_OUTPUT_CHAIN" 2>/dev/null || true
    iptables -w -X "$NODE_OUTPUT_CHAIN" 2>/dev/null || true
    iptables -w -t nat -D PREROUTING -j "$NODE_APISERVER_CHAIN" 2>/dev/null || true
    iptables -w -t nat -F "$NODE_APISERVER_CHAIN" 2>/dev/null || true
    iptables -w -t nat -X "$NODE_APISERVER_CHAIN" 2>/dev/null || true
    # kubelet's own chains (kube-proxy --cleanup leaves them).
    local tool table chain
    for tool in iptables ip6tables; do
      command -v "$tool" >/dev/null 2>&1 || continue
      for chain in INPUT OUTPUT; do "$tool" -w -D "$chain" -j KUBE-FIREWALL 2>/dev/null || true; done
      for table in filter nat mangle; do
        for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
          "$tool" -w -t "$table" -F "$chain" 2>/dev/null || true
          "$tool" -w -t "$table" -X "$chain" 2>/dev/null || true
        done
      done
    done
  fi
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
}
