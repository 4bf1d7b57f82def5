//! The vtctld client against the fake vtctld on loopback: cells, keyspaces, reparents, pruning,
//! an unavailable, hanging or restarted vtctld, and mutual TLS.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use vitess_operator::vitess::Code;
use vitess_operator::vitess::{Alias, BackupStatus, CellInfo, Error, TabletType, Tls, Vtctld};
use vtctld_fake::{FakeVtctld, Mode, ServerTls};

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn start() -> (FakeVtctld, Vtctld) {
    let fake = FakeVtctld::start(loopback()).await.unwrap();
    let client = Vtctld::connect_lazy(&fake.local_addr().to_string(), None).unwrap();
    (fake, client)
}

fn alias(uid: u32) -> Alias {
    Alias::new("zone1", uid)
}

/// A shard `commerce/-` with two REPLICA tablets (101, 102) and one RDONLY (103), no primary.
fn three_tablets(fake: &FakeVtctld) {
    fake.register_tablet(alias(101), "commerce", "-", TabletType::Replica);
    fake.register_tablet(alias(102), "commerce", "-", TabletType::Replica);
    fake.register_tablet(alias(103), "commerce", "-", TabletType::Rdonly);
}

#[tokio::test]
async fn cells_aliases_and_keyspaces_round_trip() {
    let (_fake, vtctld) = start().await;
    let zone1 = CellInfo {
        server_address: "etcd:2379".into(),
        root: "/vitess/zone1".into(),
    };
    vtctld.add_cell_info("zone1", &zone1).await.unwrap();
    let again = vtctld.add_cell_info("zone1", &zone1).await.unwrap_err();
    assert!(again.is_already_exists(), "{again}");
    let moved = CellInfo {
        root: "/vitess/zone2".into(),
        ..zone1.clone()
    };
    // UpdateCellInfo creates a missing cell, as a real vtctld does.
    vtctld.update_cell_info("zone2", &moved).await.unwrap();
    assert_eq!(
        vtctld.cell_info_names().await.unwrap(),
        vec!["zone1".to_string(), "zone2".to_string()]
    );
    assert_eq!(vtctld.cell_info("zone1").await.unwrap(), Some(zone1));
    assert_eq!(vtctld.cell_info("nowhere").await.unwrap(), None);
    vtctld.delete_cell_info("zone2").await.unwrap();
    vtctld.delete_cell_info("zone2").await.unwrap();
    assert_eq!(vtctld.cell_info("zone2").await.unwrap(), None);

    vtctld
        .update_cells_alias("region", &["zone1".to_string()])
        .await
        .unwrap();
    let aliases = vtctld.cells_aliases().await.unwrap();
    assert_eq!(aliases.get("region"), Some(&vec!["zone1".to_string()]));

    vtctld
        .create_keyspace("commerce", "semi_sync", "")
        .await
        .unwrap();
    // Creating again is done, and leaves the policy alone.
    vtctld
        .create_keyspace("commerce", "none", "")
        .await
        .unwrap();
    let ks = vtctld.keyspace("commerce").await.unwrap().unwrap();
    assert_eq!(ks.durability_policy, "semi_sync");
    vtctld
        .set_durability_policy("commerce", "none")
        .await
        .unwrap();
    let all = vtctld.keyspaces().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].name.as_str(), all[0].durability_policy.as_str()),
        ("commerce", "none")
    );
    let bogus = vtctld
        .set_durability_policy("commerce", "bogus")
        .await
        .unwrap_err();
    assert!(matches!(bogus, Error::Rejected { .. }), "{bogus}");
    assert!(
        bogus
            .to_string()
            .contains("SetKeyspaceDurabilityPolicy commerce"),
        "{bogus}"
    );
    assert_eq!(vtctld.keyspace("nothing").await.unwrap(), None);
    vtctld.delete_keyspace("commerce", false).await.unwrap();
    vtctld.delete_keyspace("commerce", false).await.unwrap();
    assert!(vtctld.keyspaces().await.unwrap().is_empty());
}

#[tokio::test]
async fn reparents_elect_then_move_the_primary_and_demote_the_old_one() {
    let (fake, vtctld) = start().await;
    three_tablets(&fake);
    let shard = vtctld.shard("commerce", "-").await.unwrap().unwrap();
    assert_eq!(shard.primary, None);

    let promoted = vtctld
        .planned_reparent("commerce", "-", &alias(101), None)
        .await
        .unwrap();
    assert_eq!(promoted, alias(101));
    let shard = vtctld.shard("commerce", "-").await.unwrap().unwrap();
    assert_eq!(shard.primary, Some(alias(101)));
    assert!(shard.is_primary_serving);

    let promoted = vtctld
        .planned_reparent("commerce", "-", &alias(102), Some(&alias(101)))
        .await
        .unwrap();
    assert_eq!(promoted, alias(102));
    assert_eq!(fake.primary("commerce", "-"), Some(alias(102)));
    assert_eq!(fake.tablet_type(&alias(101)), Some(TabletType::Replica));
    let types: Vec<_> = vtctld
        .tablets("commerce", "-")
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.alias.uid, t.tablet_type))
        .collect();
    assert_eq!(
        types,
        vec![
            (101, TabletType::Replica),
            (102, TabletType::Primary),
            (103, TabletType::Rdonly)
        ]
    );

    // Asking for the primary it already has changes nothing.
    let same = vtctld
        .planned_reparent("commerce", "-", &alias(102), Some(&alias(102)))
        .await
        .unwrap();
    assert_eq!(same, alias(102));
    let calls = fake.calls();
    let prs: Vec<_> = calls
        .iter()
        .filter(|c| c.method == "PlannedReparentShard")
        .collect();
    assert_eq!(prs.len(), 3);
    assert!(
        prs[1].request.contains("new_primary=zone1-0000000102")
            && prs[1].request.contains("expected_primary=zone1-0000000101"),
        "{}",
        prs[1]
    );
    assert_eq!(
        fake.reparents("commerce", "-"),
        vec![(None, alias(101)), (Some(alias(101)), alias(102))]
    );
}

#[tokio::test]
async fn a_reparent_to_an_rdonly_is_refused_and_the_primary_stays() {
    let (fake, vtctld) = start().await;
    three_tablets(&fake);
    vtctld
        .planned_reparent("commerce", "-", &alias(101), None)
        .await
        .unwrap();
    let err = vtctld
        .planned_reparent("commerce", "-", &alias(103), Some(&alias(101)))
        .await
        .unwrap_err();
    match &err {
        Error::Rejected { code, message, .. } => {
            assert_eq!(*code, Code::FailedPrecondition);
            assert!(message.contains("zone1-0000000103"), "{message}");
        }
        other => panic!("expected Rejected, got {other}"),
    }
    assert!(
        err.to_string().starts_with(&format!(
            "vtctld {}: PlannedReparentShard commerce/-: ",
            vtctld.address()
        )),
        "{err}"
    );
    assert_eq!(fake.primary("commerce", "-"), Some(alias(101)));
    assert_eq!(fake.tablet_type(&alias(103)), Some(TabletType::Rdonly));
    // Never retried, even though refused.
    assert_eq!(fake.count("PlannedReparentShard"), 2);
}

#[tokio::test]
async fn a_reparent_with_a_stale_expected_primary_is_refused() {
    let (fake, vtctld) = start().await;
    three_tablets(&fake);
    vtctld
        .planned_reparent("commerce", "-", &alias(101), None)
        .await
        .unwrap();
    let err = vtctld
        .planned_reparent("commerce", "-", &alias(101), Some(&alias(102)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::FailedPrecondition), "{err}");
    assert!(err.to_string().contains("expected"), "{err}");
    assert_eq!(fake.primary("commerce", "-"), Some(alias(101)));

    let unknown = vtctld
        .planned_reparent("commerce", "80-", &alias(101), None)
        .await
        .unwrap_err();
    assert!(unknown.is_not_found(), "{unknown}");
}

#[tokio::test]
async fn pruning_refuses_primaries_and_serving_shards_and_tolerates_what_is_gone() {
    let (fake, vtctld) = start().await;
    three_tablets(&fake);
    fake.register_tablet(
        Alias::new("zone2", 201),
        "commerce",
        "-",
        TabletType::Replica,
    );
    vtctld
        .planned_reparent("commerce", "-", &alias(101), None)
        .await
        .unwrap();
    assert_eq!(vtctld.shard("commerce", "80-").await.unwrap(), None);
    assert!(vtctld.tablets("commerce", "80-").await.unwrap().is_empty());

    let err = vtctld.delete_tablets(&[alias(101)]).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::FailedPrecondition), "{err}");
    vtctld
        .delete_tablets(&[alias(103), alias(999), Alias::new("gone", 1)])
        .await
        .unwrap();
    assert_eq!(fake.tablet_type(&alias(103)), None);

    let err = vtctld
        .remove_shard_cell("commerce", "-", "zone2", false)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::FailedPrecondition), "{err}");
    vtctld
        .remove_shard_cell("commerce", "-", "zone2", true)
        .await
        .unwrap();
    assert_eq!(fake.tablet_type(&Alias::new("zone2", 201)), None);

    let err = vtctld
        .delete_shards("commerce", &["-".to_string()], true)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::FailedPrecondition), "{err}");
    assert!(err.to_string().contains("serving"), "{err}");
    vtctld
        .delete_shards("commerce", &["80-".to_string()], true)
        .await
        .unwrap();

    let err = vtctld.delete_keyspace("commerce", false).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::FailedPrecondition), "{err}");
    vtctld.delete_keyspace("commerce", true).await.unwrap();
    assert!(fake.topology() == Default::default());
}

#[tokio::test]
async fn a_failing_vtctld_is_unavailable_after_a_bounded_number_of_attempts() {
    let (fake, vtctld) = start().await;
    fake.set_mode(Mode::Fail);
    let err = vtctld.cell_info_names().await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert_eq!(fake.count("GetCellInfoNames"), 4);

    // A reparent is asked for once only.
    let err = vtctld
        .planned_reparent("commerce", "-", &alias(101), None)
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert_eq!(fake.count("PlannedReparentShard"), 1);

    fake.set_mode(Mode::Serve);
    assert!(vtctld.cell_info_names().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_hanging_vtctld_hits_the_deadline() {
    let (fake, vtctld) = start().await;
    let vtctld = vtctld.with_timeout(Duration::from_millis(300));
    fake.set_mode(Mode::Hang);
    let started = Instant::now();
    let err = vtctld.keyspaces().await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, Error::DeadlineExceeded { timeout, .. } if timeout == Duration::from_millis(300)),
        "{err}"
    );
    assert!(err.is_unavailable());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(err.to_string().contains("GetKeyspaces"), "{err}");
    fake.set_mode(Mode::Serve);
    assert!(vtctld.keyspaces().await.unwrap().is_empty());
}

#[tokio::test]
async fn hanging_reparents_wait_while_other_calls_are_served_and_a_dropped_one_does_nothing() {
    let (fake, vtctld) = start().await;
    three_tablets(&fake);
    fake.set_mode(Mode::HangReparents);
    // The caller gives up (as a killed operator does): the reparent is never applied.
    let short = vtctld.clone().with_timeout(Duration::from_millis(300));
    let err = short
        .planned_reparent("commerce", "-", &alias(101), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err}");
    // Everything else is served meanwhile.
    vtctld.shard("commerce", "-").await.unwrap();
    fake.set_mode(Mode::Serve);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fake.primary("commerce", "-"), None);
    // A reparent in flight when the mode changes back is served.
    fake.set_mode(Mode::HangReparents);
    let waiting = tokio::spawn({
        let vtctld = vtctld.clone();
        async move {
            vtctld
                .planned_reparent("commerce", "-", &alias(102), None)
                .await
        }
    });
    while fake.count("PlannedReparentShard") < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!waiting.is_finished());
    fake.set_mode(Mode::Serve);
    waiting.await.unwrap().unwrap();
    assert_eq!(fake.primary("commerce", "-"), Some(alias(102)));
    // Asking again for what is already so changes nothing; the history has the one change.
    vtctld
        .planned_reparent("commerce", "-", &alias(102), None)
        .await
        .unwrap();
    assert_eq!(fake.reparents("commerce", "-"), vec![(None, alias(102))]);
}

#[tokio::test]
async fn one_held_method_waits_and_a_dropped_call_of_it_does_nothing() {
    let (fake, vtctld) = start().await;
    three_tablets(&fake);
    fake.set_mode(Mode::HangMethod("BackupShard"));
    // The caller goes away (as a killed operator does): no backup is made.
    let call = vtctld.backup_shard("commerce", "-", false);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), call)
            .await
            .is_err()
    );
    // Other calls are served meanwhile, reparents included.
    vtctld
        .planned_reparent("commerce", "-", &alias(101), None)
        .await
        .unwrap();
    fake.set_mode(Mode::Serve);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fake.backups("commerce", "-"), Vec::<String>::new());
    // A held call still waiting when the mode changes back is served.
    fake.set_mode(Mode::HangMethod("BackupShard"));
    let waiting = tokio::spawn({
        let vtctld = vtctld.clone();
        async move { vtctld.backup_shard("commerce", "-", false).await }
    });
    while fake.count("BackupShard") < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!waiting.is_finished());
    fake.set_mode(Mode::Serve);
    let outcome = waiting.await.unwrap().unwrap();
    assert_eq!(fake.backups("commerce", "-").len(), 1);
    assert!(outcome.tablet.is_some());
}

#[tokio::test]
async fn a_restarted_vtctld_is_reached_again_with_its_state() {
    let (fake, vtctld) = start().await;
    let addr = fake.local_addr();
    three_tablets(&fake);
    vtctld
        .planned_reparent("commerce", "-", &alias(102), None)
        .await
        .unwrap();
    let topology = fake.stop().await;

    let err = vtctld.shard("commerce", "-").await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");

    let fake = FakeVtctld::start_with(addr, topology).await.unwrap();
    let shard = vtctld.shard("commerce", "-").await.unwrap().unwrap();
    assert_eq!(shard.primary, Some(alias(102)));
    assert_eq!(fake.tablet_type(&alias(102)), Some(TabletType::Primary));
}

/// A CA, a server certificate for `localhost` and a client certificate, all PEM.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "vitess-operator test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf = |name: &str, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf("vitess-operator", ExtendedKeyUsagePurpose::ClientAuth);
    Pki {
        ca: ca_cert.pem(),
        server_cert,
        server_key,
        client_cert,
        client_key,
    }
}

#[tokio::test]
async fn mutual_tls_round_trip_and_a_client_without_a_certificate_is_refused() {
    let pki = pki();
    let fake = FakeVtctld::start_tls(
        loopback(),
        ServerTls {
            cert: pki.server_cert.clone().into_bytes(),
            key: pki.server_key.clone().into_bytes(),
            client_ca: Some(pki.ca.clone().into_bytes()),
        },
    )
    .await
    .unwrap();
    let address = fake.local_addr().to_string();
    let tls = Tls {
        ca: pki.ca.clone().into_bytes(),
        cert: Some(pki.client_cert.into_bytes()),
        key: Some(pki.client_key.into_bytes()),
        server_name: Some("localhost".into()),
    };
    let vtctld = Vtctld::connect_lazy(&address, Some(&tls)).unwrap();
    vtctld
        .create_keyspace("commerce", "semi_sync", "")
        .await
        .unwrap();
    assert_eq!(
        vtctld
            .keyspace("commerce")
            .await
            .unwrap()
            .unwrap()
            .durability_policy,
        "semi_sync"
    );

    let anonymous = Tls {
        cert: None,
        key: None,
        ..tls.clone()
    };
    let refused = Vtctld::connect_lazy(&address, Some(&anonymous))
        .unwrap()
        .with_timeout(Duration::from_secs(3));
    let err = refused.keyspaces().await.unwrap_err();
    // The handshake fails for good: not "unavailable", and not retried into the deadline.
    assert!(matches!(err, Error::Rejected { .. }), "{err}");
    assert!(err.to_string().contains("CertificateRequired"), "{err}");
    assert!(!err.is_unavailable(), "{err}");

    // Plain text to a TLS vtctld does not get through either.
    let plain = Vtctld::connect_lazy(&address, None)
        .unwrap()
        .with_timeout(Duration::from_secs(3));
    assert!(plain.keyspaces().await.is_err());

    let half = Tls { key: None, ..tls };
    let err = Vtctld::connect_lazy(&address, Some(&half)).unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err}");
}

#[tokio::test]
async fn the_fake_moves_a_primary_away_from_an_avoided_tablet_and_filters_tablets_by_cell() {
    use vitess_operator::vitess::proto::vtctldata::{
        GetTabletsRequest, PlannedReparentShardRequest,
    };
    use vitess_operator::vitess::proto::vtctlservice::vtctld_client::VtctldClient;

    let (fake, vtctld) = start().await;
    three_tablets(&fake);
    fake.register_tablet(
        Alias::new("zone2", 201),
        "commerce",
        "-",
        TabletType::Replica,
    );
    vtctld
        .planned_reparent("commerce", "-", &alias(102), None)
        .await
        .unwrap();
    let mut raw = VtctldClient::connect(format!("http://{}", fake.local_addr()))
        .await
        .unwrap();
    let avoid = |uid| PlannedReparentShardRequest {
        keyspace: "commerce".into(),
        shard: "-".into(),
        avoid_primary: Some(alias(uid).to_proto()),
        ..Default::default()
    };
    // Avoiding a tablet that is not the primary changes nothing.
    let resp = raw
        .planned_reparent_shard(avoid(101))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.promoted_primary.unwrap().uid, 102);
    // Avoiding the primary elects the lowest other REPLICA.
    let resp = raw
        .planned_reparent_shard(avoid(102))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.promoted_primary.unwrap().uid, 101);
    assert_eq!(fake.tablet_type(&alias(102)), Some(TabletType::Replica));

    let zone2 = raw
        .get_tablets(GetTabletsRequest {
            keyspace: "commerce".into(),
            shard: "-".into(),
            cells: vec!["zone2".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tablets;
    assert_eq!(zone2.len(), 1);
    assert_eq!(zone2[0].alias.as_ref().unwrap().uid, 201);
}

#[tokio::test]
async fn backups_are_listed_oldest_first_and_bounded_by_the_limit() {
    let (fake, client) = start().await;
    assert!(
        client
            .backups("commerce", "-", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let names = [
        "2026-01-01.000000.zone1-0000000100",
        "2026-01-02.120000.zone1-0000000100",
        "2026-01-03.235959.zone1-0000000101",
    ];
    fake.add_backup("commerce", "-", names[1], BackupStatus::Incomplete);
    fake.add_backup("commerce", "-", names[0], BackupStatus::Complete);
    fake.add_backup("commerce", "-", names[2], BackupStatus::Unknown);
    fake.add_backup(
        "commerce",
        "80-",
        "2026-01-04.000000.zone1-0000000102",
        BackupStatus::Complete,
    );

    let all = client.backups("commerce", "-", 10).await.unwrap();
    let got: Vec<&str> = all.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(got, names);
    assert_eq!(all[0].directory, "commerce/-");
    assert_eq!(all[0].status.complete(), Some(true));
    assert_eq!(all[1].status.complete(), Some(false));
    assert_eq!(all[2].status.complete(), None);
    assert_eq!(all[2].tablet, Some(Alias::new("zone1", 101)));
    let secs = all[1]
        .time
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(secs, 1_767_355_200); // 2026-01-02T12:00:00Z

    let last = client.backups("commerce", "-", 1).await.unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].name, names[2]);

    assert!(fake.remove_backup("commerce", "-", names[0]));
    assert_eq!(client.backups("commerce", "-", 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn backup_shard_backs_up_a_replica_and_refuses_a_shard_with_only_a_primary() {
    let (fake, client) = start().await;
    fake.register_tablet(Alias::new("zone1", 1), "commerce", "-", TabletType::Primary);
    let err = client
        .backup_shard("commerce", "-", false)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::FailedPrecondition), "{err}");
    assert!(fake.backups("commerce", "-").is_empty());

    fake.register_tablet(Alias::new("zone1", 2), "commerce", "-", TabletType::Replica);
    let outcome = client.backup_shard("commerce", "-", false).await.unwrap();
    assert_eq!(outcome.tablet, Some(Alias::new("zone1", 2)));
    assert_eq!(
        outcome.events.last().map(String::as_str),
        Some("Backup completed")
    );
    let backups = client.backups("commerce", "-", 10).await.unwrap();
    assert_eq!(backups.len(), 1);
    assert!(
        backups[0].name.ends_with(".zone1-0000000002"),
        "{}",
        backups[0].name
    );
    assert_eq!(backups[0].status, BackupStatus::Complete);
    assert_eq!(fake.count("BackupShard"), 2);
}

#[tokio::test]
async fn a_primary_that_starts_again_comes_back_as_primary() {
    let (fake, vtctld) = start().await;
    three_tablets(&fake);
    vtctld
        .planned_reparent("commerce", "-", &alias(102), None)
        .await
        .unwrap();
    // Its pod is replaced; the new vttablet asks for its pool's type.
    fake.register_tablet(alias(102), "commerce", "-", TabletType::Replica);
    assert_eq!(fake.tablet_type(&alias(102)), Some(TabletType::Primary));
    assert_eq!(fake.primary("commerce", "-"), Some(alias(102)));
    // Another tablet starting is what it asks to be.
    fake.register_tablet(alias(101), "commerce", "-", TabletType::Replica);
    assert_eq!(fake.tablet_type(&alias(101)), Some(TabletType::Replica));
    assert_eq!(fake.reparents("commerce", "-"), vec![(None, alias(102))]);
}
