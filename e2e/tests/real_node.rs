//! The real node beside the KWOK nodes (e2e/cluster.d/node.sh): it is Ready with a real
//! kubelet, pods there get addresses on this machine's bridge, a Service in front of a pod
//! answers (kube-proxy), cluster DNS names resolve (CoreDNS), `kubectl logs` and `exec` work,
//! and the images built here run together: mysqld (MySQL 9.7 under Vitess' mysqlctld) and a
//! vttablet that finds it and registers in its topology.
//!
//! Without the node (`e2e/cluster up --no-real-node`) these tests skip, except under `CI=true`,
//! where they fail.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::Api;
use vitess_operator_e2e::{
    REAL_NODE_POD_PREFIX, REAL_NODE_TAINT, TestNamespace, client, http_get, is_ready, kubectl,
    kubectl_with_stdin, placement_yaml, real_node, wait_for,
};

/// Images start in seconds here (nothing is pulled), mysqld's first start takes longer.
const TIMEOUT: Duration = Duration::from_secs(180);

/// Waits until pod `name` in `ns` is Running and Ready, and returns it.
async fn ready_pod(pods: &Api<Pod>, name: &str) -> Result<Pod> {
    wait_for(
        &format!("pod {name} to be Running and Ready on the real node"),
        TIMEOUT,
        async |seen: &mut String| {
            let pod = pods.get(name).await?;
            let status = pod.status.clone().unwrap_or_default();
            *seen = format!(
                "phase {:?}, node {:?}, containers {:?}",
                status.phase,
                pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                status
                    .container_statuses
                    .unwrap_or_default()
                    .iter()
                    .map(|c| format!(
                        "{} ready={} state={:?}",
                        c.name,
                        c.ready,
                        c.state.as_ref().map(|s| (
                            s.waiting.as_ref().and_then(|w| w.reason.clone()),
                            s.terminated.as_ref().and_then(|t| t.reason.clone())
                        ))
                    ))
                    .collect::<Vec<_>>()
            );
            Ok(is_ready(&pod).then_some(pod))
        },
    )
    .await
}

fn pod_ip(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_real_node_is_ready_beside_the_kwok_nodes() -> Result<()> {
    let client = client().await?;
    let Some(name) = real_node(&client, "the_real_node_is_ready_beside_the_kwok_nodes").await?
    else {
        return Ok(());
    };
    let nodes: Api<Node> = Api::all(client);
    let node = nodes.get(&name).await?;
    let info = node
        .status
        .as_ref()
        .and_then(|s| s.node_info.clone())
        .context("the node reports no nodeInfo")?;
    ensure!(
        info.kubelet_version == "v1.35.4",
        "kubelet version {}",
        info.kubelet_version
    );
    ensure!(
        info.container_runtime_version.starts_with("containerd://"),
        "runtime {}",
        info.container_runtime_version
    );
    let labels = node.metadata.labels.clone().unwrap_or_default();
    ensure!(
        labels
            .get("topology.kubernetes.io/zone")
            .map(String::as_str)
            == Some("zone1"),
        "zone label: {labels:?}"
    );
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    ensure!(
        taints
            .iter()
            .any(|t| t.key == REAL_NODE_TAINT && t.effect == "NoSchedule"),
        "taints: {taints:?}"
    );
    // As a user sees it.
    let out = kubectl(&["get", "nodes", "--no-headers"]).await?;
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .with_context(|| format!("kubectl get nodes does not list {name}:\n{out}"))?;
    ensure!(
        line.contains(" Ready ") && line.contains("v1.35.4"),
        "kubectl get nodes: {line}"
    );
    ensure!(
        out.lines().filter(|l| l.starts_with("kwok-")).count() == 3,
        "the KWOK nodes are not all there:\n{out}"
    );
    Ok(())
}

/// An etcd pod behind a Service, and a client pod that reaches it by its DNS name.
fn network_yaml() -> String {
    let placement = placement_yaml(2);
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: etcd
  labels: {{app: etcd}}
spec:
{placement}  containers:
  - name: etcd
    image: quay.io/coreos/etcd:v3.5.17
    imagePullPolicy: Never
    command: [/usr/local/bin/etcd]
    args:
    - --name=probe
    - --data-dir=/tmp/etcd
    - --listen-client-urls=http://0.0.0.0:2379
    - --advertise-client-urls=http://$(POD_IP):2379
    - --listen-peer-urls=http://127.0.0.1:2380
    env:
    - name: POD_IP
      valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
    ports: [{{name: client, containerPort: 2379}}]
    readinessProbe:
      httpGet: {{path: /health, port: 2379}}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: etcd
spec:
  selector: {{app: etcd}}
  ports: [{{name: client, port: 2379, targetPort: 2379}}]
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
{placement}  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: vitess/lite:v24.0.3
    imagePullPolicy: Never
    command: [sleep, infinity]
"#
    )
}

/// An HTTP GET from inside the client pod, with bash's /dev/tcp (the image has no curl).
async fn get_from_pod(ns: &str, host: &str, port: u16, path: &str) -> Result<String> {
    let script = format!(
        "exec 3<>/dev/tcp/{host}/{port} && printf 'GET {path} HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n' >&3 && timeout 5 cat <&3"
    );
    kubectl(&["-n", ns, "exec", "client", "--", "bash", "-c", &script]).await
}

#[tokio::test]
async fn pods_get_addresses_services_answer_and_names_resolve() -> Result<()> {
    let client = client().await?;
    if real_node(
        &client,
        "pods_get_addresses_services_answer_and_names_resolve",
    )
    .await?
    .is_none()
    {
        return Ok(());
    }
    let ns = TestNamespace::create(&client, "real-network").await?;
    let name = ns.name().to_string();
    kubectl_with_stdin(&["-n", &name, "apply", "-f", "-"], Some(&network_yaml())).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &name);
    let server = ready_pod(&pods, "etcd").await?;
    let client_pod = ready_pod(&pods, "client").await?;
    for pod in [&server, &client_pod] {
        ensure!(
            pod_ip(pod).starts_with(REAL_NODE_POD_PREFIX),
            "pod {:?} has address {:?}, not one of the real node's bridge",
            pod.metadata.name,
            pod_ip(pod)
        );
    }
    ensure!(
        pod_ip(&server) != pod_ip(&client_pod),
        "two pods, one address"
    );

    // This machine reaches the pod, and the Service's cluster address (kube-proxy's rules).
    let (code, body) = http_get(&format!("{}:2379", pod_ip(&server)), "/health").await?;
    ensure!(
        code == 200 && body.contains("true"),
        "pod /health: {code} {body}"
    );
    let services: Api<Service> = Api::namespaced(client.clone(), &name);
    let cluster_ip = services
        .get("etcd")
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .context("the Service has no cluster IP")?;
    let (code, body) = wait_for(
        "the etcd Service to answer on its cluster IP",
        Duration::from_secs(30),
        async |seen: &mut String| {
            let answer = http_get(&format!("{cluster_ip}:2379"), "/health").await?;
            *seen = format!("{answer:?}");
            Ok((answer.0 == 200).then_some(answer))
        },
    )
    .await?;
    ensure!(
        code == 200 && body.contains("true"),
        "Service /health: {code} {body}"
    );

    // Addresses of pods that are not on the bridge (KWOK's are made up) are refused here at
    // once, not sent to the machine's default route.
    let kwok_pod = "10.244.1.250:80";
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(kwok_pod),
    )
    .await
    {
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        other => anyhow::bail!("connecting to {kwok_pod} was not refused at once: {other:?}"),
    }

    // Inside a pod, the Service's name resolves to its cluster IP (CoreDNS, by the search
    // path too), and the pod reaches the other pod through it.
    let fqdn = format!("etcd.{name}.svc.cluster.local");
    for host in [fqdn.as_str(), "etcd"] {
        let out = wait_for(
            &format!("{host} to resolve in the client pod"),
            Duration::from_secs(30),
            async |seen: &mut String| {
                let out = kubectl(&["-n", &name, "exec", "client", "--", "getent", "hosts", host])
                    .await?;
                *seen = out.clone();
                Ok(Some(out))
            },
        )
        .await?;
        ensure!(
            out.split_whitespace().next() == Some(cluster_ip.as_str()),
            "{host} resolves to {out:?}, not {cluster_ip}"
        );
    }
    let answer = get_from_pod(&name, &fqdn, 2379, "/health").await?;
    ensure!(
        answer.starts_with("HTTP/1.") && answer.contains("\"health\":\"true\""),
        "GET /health through the Service from a pod: {answer}"
    );

    // What a user looks at: the container's log.
    let logs = kubectl(&["-n", &name, "logs", "etcd"]).await?;
    ensure!(
        logs.contains("serving client traffic") || logs.contains("ready to serve client requests"),
        "kubectl logs etcd:\n{logs}"
    );
    ns.delete(Duration::from_secs(120)).await?;
    Ok(())
}

/// A tablet as the operator's pods run one, reduced to what the images must do together: an
/// init container copies mysqlctld out of vitess/lite, mysqld (MySQL 9.7) runs under it with its
/// data on a PVC of the default StorageClass, and vttablet reaches it through their shared
/// socket and registers in a topology of its own (an etcd in the pod). Every container runs as
/// the vitess user (999), as the operator's pods do.
fn tablet_yaml() -> String {
    let placement = placement_yaml(2);
    let topo = "--topo-implementation=etcd2 --topo-global-server-address=127.0.0.1:2379 --topo-global-root=/vitess/global";
    format!(
        r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: tablet-data
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: tablet
spec:
{placement}  securityContext: {{runAsUser: 999, runAsNonRoot: true, fsGroup: 999}}
  volumes:
  - {{name: vt, emptyDir: {{}}}}
  - {{name: data, persistentVolumeClaim: {{claimName: tablet-data}}}}
  initContainers:
  - name: init-vt-root
    image: vitess/lite:v24.0.3
    imagePullPolicy: Never
    command: [bash, -c, "mkdir -p /mnt/vt/bin /mnt/vt/socket && cp /vt/bin/mysqlctld /mnt/vt/bin/"]
    volumeMounts: [{{name: vt, mountPath: /mnt/vt}}]
  containers:
  - name: topo
    image: quay.io/coreos/etcd:v3.5.17
    imagePullPolicy: Never
    command: [/usr/local/bin/etcd]
    args: [--name=topo, --data-dir=/tmp/topo, --listen-client-urls=http://127.0.0.1:2379,
      --advertise-client-urls=http://127.0.0.1:2379, --listen-peer-urls=http://127.0.0.1:2380]
  - name: mysqld
    image: mysql:9.7
    imagePullPolicy: Never
    command: [/vt/bin/mysqlctld]
    args: [--tablet-uid=100, --socket-file=/vt/vtdataroot/mysqlctl.sock,
      --mysql-socket=/vt/socket/mysql.sock, --db-dba-user=vt_dba, --db-charset=utf8mb4, --wait-time=10m]
    env:
    - {{name: VTROOT, value: /vt}}
    - {{name: VTDATAROOT, value: /vt/vtdataroot}}
    - {{name: VT_MYSQL_ROOT, value: /usr}}
    readinessProbe: {{tcpSocket: {{port: 3306}}, periodSeconds: 2}}
    volumeMounts:
    - {{name: vt, mountPath: /vt/bin, subPath: bin, readOnly: true}}
    - {{name: vt, mountPath: /vt/socket, subPath: socket}}
    - {{name: data, mountPath: /vt/vtdataroot, subPath: vtdataroot}}
  - name: vttablet
    image: vitess/lite:v24.0.3
    imagePullPolicy: Never
    command: [bash, -c]
    args:
    - |
      set -e
      until vtctldclient --server=internal {topo} GetCellInfoNames >/dev/null 2>&1; do sleep 1; done
      vtctldclient --server=internal {topo} AddCellInfo --root=/vitess/zone1 --server-address=127.0.0.1:2379 zone1 || true
      exec vttablet {topo} --tablet-path=zone1-0000000100 --init-keyspace=smoke --init-shard=0 \
        --init-tablet-type=replica --port=15000 --grpc-port=15999 \
        --service-map=grpc-queryservice,grpc-tabletmanager,grpc-updatestream --tablet-hostname="$POD_IP" \
        --db-socket=/vt/socket/mysql.sock --mysqlctl-socket=/vt/vtdataroot/mysqlctl.sock \
        --db-charset=utf8mb4 --init-db-name-override=vt_smoke
    env:
    - name: POD_IP
      valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
    volumeMounts:
    - {{name: vt, mountPath: /vt/socket, subPath: socket}}
    - {{name: data, mountPath: /vt/vtdataroot, subPath: vtdataroot}}
"#
    )
}

#[tokio::test]
async fn mysqld_and_vttablet_run_together_on_images_built_here() -> Result<()> {
    let client = client().await?;
    if real_node(
        &client,
        "mysqld_and_vttablet_run_together_on_images_built_here",
    )
    .await?
    .is_none()
    {
        return Ok(());
    }
    let ns = TestNamespace::create(&client, "real-tablet").await?;
    let name = ns.name().to_string();
    kubectl_with_stdin(&["-n", &name, "apply", "-f", "-"], Some(&tablet_yaml())).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &name);
    let pod = ready_pod(&pods, "tablet").await?;
    let ip = pod_ip(&pod);

    // mysqld answers, and it is the MySQL of the image. Its port opens (Ready) while mysqlctld
    // still runs the init SQL that creates vt_dba, so the first tries may be refused.
    let version = wait_for(
        "mysqld to answer vt_dba on its socket",
        Duration::from_secs(90),
        async |seen: &mut String| {
            let out =
                vitess_operator_e2e::sql::dba_query(&name, "tablet", "SELECT @@version").await;
            *seen = format!("{out:?}");
            Ok(out.ok())
        },
    )
    .await?;
    ensure!(
        version.trim().starts_with("9.7."),
        "mysqld says version {version:?}"
    );

    // vttablet found mysqld (it learns the port from it) and registered in its topology.
    let tablet = wait_for(
        "vttablet to register zone1-0000000100 with the port of its mysqld",
        TIMEOUT,
        async |seen: &mut String| {
            let out = kubectl(&[
                "-n",
                &name,
                "exec",
                "tablet",
                "-c",
                "vttablet",
                "--",
                "vtctldclient",
                "--server=internal",
                "--topo-implementation=etcd2",
                "--topo-global-server-address=127.0.0.1:2379",
                "--topo-global-root=/vitess/global",
                "GetTablet",
                "zone1-0000000100",
            ])
            .await?;
            *seen = out.clone();
            let tablet: serde_json::Value = serde_json::from_str(&out)?;
            Ok((tablet["mysql_port"] == 3306).then_some(tablet))
        },
    )
    .await?;
    ensure!(
        tablet["type"] == "REPLICA" && tablet["hostname"] == ip.as_str(),
        "tablet record: {tablet}"
    );
    // Its status page, from this machine.
    let (code, _) = http_get(&format!("{ip}:15000"), "/debug/status").await?;
    ensure!(code == 200, "vttablet /debug/status answered {code}");
    // The logs a user reads.
    let logs = kubectl(&["-n", &name, "logs", "tablet", "-c", "vttablet"]).await?;
    ensure!(
        logs.contains("zone1-0000000100"),
        "kubectl logs -c vttablet:\n{logs}"
    );
    ns.delete(Duration::from_secs(120)).await?;
    Ok(())
}
