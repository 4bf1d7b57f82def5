//! The cluster's validate step: a spec with a problem no schema can catch (overlapping key
//! ranges, pools in unknown cells, ...) is reported as `Ready=False, InvalidSpec` with one
//! Warning per new message, and nothing is applied.

use kube::runtime::events::EventType;

use crate::api::VitessCluster;
use crate::controller::condition::{self, Readiness};
use crate::controller::{Context, Error};
use crate::k8s::{apply, events};

/// Writes the InvalidSpec condition for `problems` and publishes the Event once per message.
pub(super) async fn report(
    ctx: &Context,
    cluster: &VitessCluster,
    problems: &[String],
) -> Result<(), Error> {
    let message = problems.join("; ");
    let previous = cluster
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == condition::READY))
        .map(|c| (c.reason.as_str(), c.message.as_str()));
    let new = events::invalid_spec_is_new(previous, &message);
    let readiness = Readiness::new(false, events::INVALID_SPEC, message.clone());
    let mut status = cluster.status.clone().unwrap_or_default();
    status.observed_generation = cluster.metadata.generation;
    status.conditions =
        condition::with_ready(&status.conditions, &readiness, cluster.metadata.generation);
    apply::status(&ctx.client, cluster, cluster.status.as_ref(), &status).await?;
    if new {
        ctx.events
            .publish(cluster, EventType::Warning, events::INVALID_SPEC, &message)
            .await;
    }
    Ok(())
}
