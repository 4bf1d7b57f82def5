//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several operator
//! processes only one runs the controllers (and so writes).
//!
//! The rules are client-go's: a follower takes the lease only when it is free (no holder)
//! or when its record (holder, renewTime) has not changed for a whole lease duration *as
//! measured on the follower's own clock*, so clock skew between processes cannot give two
//! leaders. Every write is a replace with the resourceVersion read, so two processes that
//! race for a free lease cannot both win. The leader renews every [`RENEW`]; if it cannot
//! renew for [`RENEW_DEADLINE`] it stops its controllers and exits (a Deployment restarts
//! it as a follower) before a follower may take over at [`LEASE_DURATION`]. On SIGTERM the
//! leader stops its controllers, then clears `holderIdentity`, so a follower takes over at
//! its next retry instead of after a lease duration.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::time::Instant;

/// How long a lease is valid after its last renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the leader renews.
pub const RENEW: Duration = Duration::from_secs(5);
/// A leader that could not renew for this long gives up (before [`LEASE_DURATION`]).
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often a follower tries to acquire.
pub const RETRY: Duration = Duration::from_secs(2);
/// After SIGTERM, how long the controllers get to finish what they are doing before they are
/// dropped (a signal that came before they listened for it would otherwise never stop them).
/// Dropping a reconcile between two server-side applies is safe: the next leader re-applies.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Lease {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        source: Box<kube::Error>,
    },
    #[error(
        "lost the leadership of Lease {namespace}/{name} (not renewed for {RENEW_DEADLINE:?}); stopped the controllers"
    )]
    Lost { namespace: String, name: String },
    #[error("cannot wait for signals: {0}")]
    Signal(std::io::Error),
}

/// What [`Elector::run`] ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Led, ran the work to its end (a signal), released the lease.
    Led,
    /// Stopped by a signal while waiting to lead.
    StoppedAsFollower,
}

/// One process' participation in the election of one Lease.
pub struct Elector {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    /// The last record seen (holder, renewTime, resourceVersion) and when it was first seen.
    observed: Option<(Observed, Instant)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
}

impl Elector {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            observed: None,
        }
    }

    /// This process' holder identity: `$POD_NAME` (set from the downward API by the
    /// Deployment), else `<hostname>_<pid>`.
    pub fn default_identity() -> String {
        if let Ok(pod) = std::env::var("POD_NAME")
            && !pod.is_empty()
        {
            return pod;
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown".into());
        format!("{host}_{}", std::process::id())
    }

    fn error(&self, source: kube::Error) -> Error {
        Error::Api {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source: Box::new(source),
        }
    }

    /// Waits until this process leads (or a signal stops it), then runs `work` while renewing
    /// the lease. `work` should end on SIGTERM/SIGINT by itself (the controllers do); it is
    /// dropped [`SHUTDOWN_GRACE`] after the signal if not. The lease is released after it ends. `on_state(leading)` is called when the state is known and
    /// whenever it changes.
    pub async fn run<F>(&mut self, work: F, on_state: impl Fn(bool)) -> Result<Outcome, Error>
    where
        F: Future<Output = ()>,
    {
        let mut signals = Signals::new()?;
        on_state(false);
        tracing::info!(lease = %self.name, identity = %self.identity, "waiting to become the leader");
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(err) => tracing::warn!("leader election: {err}"),
            }
            tokio::select! {
                () = signals.recv() => {
                    tracing::info!("stopping as a follower");
                    return Ok(Outcome::StoppedAsFollower);
                }
                () = tokio::time::sleep(RETRY) => {}
            }
        }
        tracing::info!(lease = %self.name, identity = %self.identity, "became the leader; starting controllers");
        on_state(true);
        let result = {
            tokio::pin!(work);
            let mut renewed = Instant::now();
            loop {
                tokio::select! {
                    () = &mut work => break Ok(Outcome::Led),
                    () = signals.recv() => {
                        if tokio::time::timeout(SHUTDOWN_GRACE, &mut work).await.is_err() {
                            tracing::warn!("the controllers did not stop within {SHUTDOWN_GRACE:?}; dropping them");
                        }
                        break Ok(Outcome::Led);
                    }
                    () = tokio::time::sleep(RENEW) => {}
                }
                match self.try_acquire_or_renew().await {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => {
                        break Err(Error::Lost {
                            namespace: self.namespace.clone(),
                            name: self.name.clone(),
                        });
                    }
                    Err(err) => tracing::warn!("leader election: cannot renew: {err}"),
                }
                if renewed.elapsed() > RENEW_DEADLINE {
                    break Err(Error::Lost {
                        namespace: self.namespace.clone(),
                        name: self.name.clone(),
                    });
                }
            }
        };
        on_state(false);
        if result.is_ok() {
            match self.release().await {
                Ok(()) => tracing::info!(lease = %self.name, "released the lease"),
                Err(err) => tracing::warn!("leader election: cannot release: {err}"),
            }
        }
        result
    }

    /// One round of the election: create the lease, renew it, or take it over when free or
    /// expired. Returns whether this process holds it now.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, Error> {
        let now = Timestamp::now();
        let Some(lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error(e))?
        else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, 0, Some(now))),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(err) => Err(self.error(err)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = Observed {
            holder: holder.clone(),
            renew_time: spec.renew_time.as_ref().map(|t| t.0),
        };
        let seen_at = match &self.observed {
            Some((previous, at)) if *previous == record => *at,
            _ => Instant::now(),
        };
        self.observed = Some((record, seen_at));
        let mine = holder.as_deref() == Some(self.identity.as_str());
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(LEASE_DURATION, Duration::from_secs);
        let expired = seen_at.elapsed() > duration;
        if !(mine || holder.is_none() || expired) {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        let new_spec = if mine {
            LeaseSpec {
                renew_time: Some(MicroTime(now)),
                lease_duration_seconds: Some(seconds(LEASE_DURATION)),
                ..spec
            }
        } else {
            self.spec(now, transitions.saturating_add(1), Some(now))
        };
        let mut update = lease;
        update.spec = Some(new_spec);
        // The resourceVersion read stays in `update.metadata`: a concurrent writer makes this
        // a 409 Conflict instead of two leaders.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &update)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(err) => Err(self.error(err)),
        }
    }

    /// Clears `holderIdentity` if this process holds the lease, so a follower takes over at
    /// once.
    pub async fn release(&mut self) -> Result<(), Error> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error(e))?
        else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.acquire_time = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    fn spec(&self, now: Timestamp, transitions: i32, acquired: Option<Timestamp>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(seconds(LEASE_DURATION)),
            acquire_time: acquired.map(MicroTime),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

/// SIGTERM or SIGINT, whichever comes first.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, Error> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(Error::Signal)?,
            int: signal(SignalKind::interrupt()).map_err(Error::Signal)?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_gives_up_before_a_follower_may_take_over() {
        assert!(RENEW < RENEW_DEADLINE);
        assert!(RENEW_DEADLINE < LEASE_DURATION);
        assert!(RETRY < RENEW);
        assert!(
            SHUTDOWN_GRACE < Duration::from_secs(30),
            "the Deployment's grace period"
        );
        assert_eq!(seconds(LEASE_DURATION), 15);
    }

    #[test]
    fn identity_prefers_the_pod_name() {
        // The process environment is shared by the tests of this binary; only read it.
        let identity = Elector::default_identity();
        match std::env::var("POD_NAME") {
            Ok(pod) if !pod.is_empty() => assert_eq!(identity, pod),
            _ => assert!(
                identity.ends_with(&format!("_{}", std::process::id())),
                "{identity}"
            ),
        }
    }
}
