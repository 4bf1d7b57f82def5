//! The operator killed during a backup request (issue 18, item 1): a VitessBackup with
//! `spec.keyspace` and `spec.shard` asks for one `BackupShard`, which the operator sends once
//! (it persists `BackupStarted` before sending, so a restarted operator never sends it
//! again). Kill points, in turn: right after the request is created, once `BackupStarted` is
//! persisted, while `BackupShard` is in flight (the fake holds it: the caller's death cancels
//! it, as a real vtctld's stream would be), once Vitess took the backup but before the
//! operator read the answer, once the request is complete.
//!
//! Checked after the restart: `BackupShard` was sent at most once; the request ends, and says
//! `complete` exactly when Vitess holds a backup taken for it, naming that backup (a restarted
//! operator finds it in storage); otherwise it says it was interrupted. The shard's primary
//! never moved and no pod was replaced.

use super::*;
use vitess_operator_e2e::{condition, condition_detail};

/// Reasons of a request that is over.
const OVER: [&str; 3] = ["BackupComplete", "BackupFailed", "Interrupted"];

impl Suite<'_> {
    /// Asks for a backup of the shared cluster's shard with a new VitessBackup, killing the
    /// operator at kill point `run` (of 5, in turn).
    pub(super) async fn backup_request(&mut self, run: usize) -> Result<Survived> {
        let DrainStart {
            mut witness,
            primary,
            before,
            changes_before,
            ..
        } = self.drain_start().await?;
        let name = format!("request{run}");
        let requests = dynamic(self.client, self.ns, "VitessBackup");
        let backups_before = backups(self.fake).await;
        let sends_before = backup_calls(self.fake).await;
        let point = run % 5;
        if point == 2 || point == 3 {
            set_fake_mode(self.fake, Mode::HangMethod("BackupShard")).await;
        }
        apply_yaml(self.client, self.ns, &request_yaml(&name)).await?;
        let fake = self.fake;
        let at = match point {
            0 => "right after the request was created",
            1 => {
                // Its start time is written with `BackupStarted`; the fake answers at once, so
                // the request may be complete before a poll sees `BackupStarted` itself.
                until("BackupStarted", async || {
                    let request = requests.get(&name).await?;
                    Ok(!request.data["status"]["startTime"].is_null())
                })
                .await?;
                "once BackupStarted was persisted"
            }
            _ => {
                until("BackupShard to be sent", async || {
                    Ok(backup_calls(fake).await > sends_before)
                })
                .await?;
                match point {
                    2 => "while BackupShard was in flight",
                    3 => {
                        set_fake_mode(fake, Mode::Serve).await;
                        until("Vitess to take the backup", async || {
                            Ok(backups(fake).await.len() > backups_before.len())
                        })
                        .await?;
                        "once Vitess took the backup, before the operator saw the answer"
                    }
                    _ => {
                        until("the request to be complete", async || {
                            let request = requests.get(&name).await?;
                            Ok(condition(&request, "Complete").as_deref() == Some("True"))
                        })
                        .await?;
                        "once the request was complete"
                    }
                }
            }
        };
        let how = if point == 3 {
            at.to_string()
        } else {
            format!("{at} (+{:?})", self.jitter().await)
        };
        witness.observe().await?;
        let restarted = self.kill_and_restart().await?;

        let operator = &mut *self.operator;
        let (status, reason, message, storage_name) = wait_for(
            &format!("VitessBackup {name} to end"),
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                witness.observe().await?;
                let request = requests.get(&name).await?;
                let detail = condition_detail(&request, "Complete");
                *seen = format!("Complete: {detail:?}");
                let storage_name = request.data["status"]["storageName"]
                    .as_str()
                    .map(str::to_string);
                Ok(detail
                    .filter(|(_, reason, _)| OVER.contains(&reason.as_str()))
                    .map(|(s, r, m)| (s, r, m, storage_name)))
            },
        )
        .await?;
        let recovered = restarted.elapsed();

        let sends = backup_calls(self.fake).await - sends_before;
        ensure!(
            sends <= 1,
            "BackupShard was sent {sends} times for one request"
        );
        let taken: Vec<String> = backups(self.fake)
            .await
            .into_iter()
            .filter(|b| !backups_before.contains(b))
            .collect();
        match taken.as_slice() {
            [] => ensure!(
                status != "True" && reason == "Interrupted",
                "no backup was taken, yet the request says {status} {reason}: {message}"
            ),
            [one] => ensure!(
                status == "True" && storage_name.as_deref() == Some(one.as_str()),
                "backup {one} was taken for the request, which says {status} {reason} \
                 (storageName {storage_name:?}): {message}"
            ),
            more => bail!("one request, several backups taken: {more:?}"),
        }
        let (primary_after, after) = self
            .converged(SHARED_PAIR, 3, None, Some(&mut witness))
            .await?;
        let changes = reparents(self.fake, SHARED_KEYSPACE).await.len();
        ensure!(
            primary_after == primary && changes == changes_before,
            "the primary moved during a backup request: {primary} -> {primary_after}"
        );
        same_pods(&before, &after)?;
        witness.check().await?;
        Ok(Survived {
            recovered,
            how: format!("{how}; {reason}"),
        })
    }
}

/// The backups of the shared cluster's shard in the fake's storage, by name.
async fn backups(fake: &SharedFake) -> Vec<String> {
    let guard = fake.lock().await;
    guard
        .as_ref()
        .map(|f| f.backups(SHARED_KEYSPACE, SHARD))
        .unwrap_or_default()
}

/// How many BackupShard calls of the shared cluster's shard the fake received.
async fn backup_calls(fake: &SharedFake) -> usize {
    calls(fake, "BackupShard", &format!("{SHARED_KEYSPACE}/{SHARD} "))
        .await
        .len()
}

/// A request for one backup of the shared cluster's shard.
fn request_yaml(name: &str) -> String {
    format!(
        r#"
apiVersion: planetscale.com/v2
kind: VitessBackup
metadata:
  name: {name}
  labels:
    {CLUSTER_LABEL}: {SHARED}
spec:
  keyspace: {SHARED_KEYSPACE}
  shard: "{SHARD}"
"#
    )
}
