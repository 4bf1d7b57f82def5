//! Polling with a deadline and a useful failure message.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// How often [`wait_for`] polls.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Polls `check` until it returns `Ok(Some(value))`, then returns the value.
///
/// `check` gets a `&mut String` in which to describe what it last saw (e.g.
/// `"2/3 replicas ready"`); it is kept across polls. An `Err` from `check` is
/// treated as transient (the API server may be busy): it is recorded as the
/// last observed state and polling goes on. On timeout the error names
/// `description`, the time waited and the last observed state.
///
/// ```no_run
/// # async fn demo(client: kube::Client) -> anyhow::Result<()> {
/// use k8s_openapi::api::apps::v1::Deployment;
/// let api: kube::Api<Deployment> = kube::Api::namespaced(client, "demo");
/// let ready = vitess_operator_e2e::wait_for(
///     "deployment web to have 3 ready replicas",
///     std::time::Duration::from_secs(60),
///     async |seen: &mut String| {
///         let d = api.get("web").await?;
///         let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
///         *seen = format!("{ready}/3 ready");
///         Ok((ready == 3).then_some(ready))
///     },
/// )
/// .await?;
/// # Ok(()) }
/// ```
pub async fn wait_for<T, F>(description: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: AsyncFnMut(&mut String) -> Result<Option<T>>,
{
    let start = Instant::now();
    let mut observed = String::new();
    let mut polls = 0u32;
    loop {
        polls += 1;
        let mut seen = std::mem::take(&mut observed);
        match check(&mut seen).await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => observed = seen,
            Err(err) => observed = format!("error: {err:#}"),
        }
        if start.elapsed() >= timeout {
            if observed.is_empty() {
                observed = "(the check recorded nothing)".to_string();
            }
            bail!(
                "timed out after {:.1}s ({polls} polls) waiting for {description}; last observed: {observed}",
                start.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
