//! Growing tablets' data volumes in place: a larger storage request in a pool's
//! `dataVolumeClaimTemplate` is patched into each existing claim of the pool, no pod restarted,
//! where the update strategy lets it: `Immediate`, or `External` with `storage` in
//! `updateStrategy.external.allowResourceChanges` (the Go operator's rule). Kubernetes then
//! expands the volume, and the file system online where the driver can. A claim never shrinks.
//! What waits or cannot happen is said in the shard's `DataVolumeResizePending` condition.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};

use super::Observed;
use crate::api::VitessShard;
use crate::api::shared::UpdateStrategyType;
use crate::controller::condition::Readiness;
use crate::desired::podspec;

/// The condition that says a tablet's data volume is not (yet) the size its pool asks for.
pub const DATA_VOLUME_RESIZE_PENDING: &str = "DataVolumeResizePending";

/// Why one claim is not the size its pool asks for, worst first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Pending {
    /// The API server refused the larger request (e.g. a StorageClass without
    /// `allowVolumeExpansion`); its message.
    Refused(String),
    /// The pool asks for less than the claim has: volumes only grow.
    CannotShrink,
    /// The External update strategy without `storage` in `allowResourceChanges`.
    WaitingForRelease,
    /// Asked for; the volume or its file system is still being expanded.
    Expanding,
}

/// What to do about one tablet's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Resize {
    pub(super) claim: String,
    /// The claim's request now, and its capacity (`None` before it is bound).
    pub(super) have: String,
    pub(super) capacity: Option<String>,
    pub(super) want: String,
    /// Patch the claim's request to `want` now.
    pub(super) patch: bool,
    /// Why it is not that size yet, if it will not be after this reconcile's patch either.
    pub(super) pending: Option<Pending>,
}

/// Whether the shard's update strategy lets a larger volume be asked for now.
fn growth_allowed(shard: &VitessShard) -> bool {
    let strategy = shard.spec.update_strategy.as_ref();
    match strategy.and_then(|s| s.type_).unwrap_or_default() {
        UpdateStrategyType::Immediate => true,
        UpdateStrategyType::External => strategy
            .and_then(|s| s.external.as_ref())
            .and_then(|e| e.allow_resource_changes.as_ref())
            .is_some_and(|allowed| allowed.iter().any(|r| r == "storage")),
    }
}

fn storage(quantities: Option<&std::collections::BTreeMap<String, Quantity>>) -> Option<&Quantity> {
    quantities.and_then(|q| q.get("storage"))
}

/// What each tablet's claim needs (pure): nothing for a claim of the asked size.
pub(super) fn plan(shard: &VitessShard, tablets: &[Observed]) -> Vec<Resize> {
    let allowed = growth_allowed(shard);
    let mut out = Vec::new();
    for tablet in tablets {
        let (Some(claim), Some(want)) = (&tablet.claim, &tablet.want_storage) else {
            continue;
        };
        let spec = claim.spec.as_ref().and_then(|s| s.resources.as_ref());
        let Some(have) = storage(spec.and_then(|r| r.requests.as_ref())) else {
            continue;
        };
        let capacity = storage(claim.status.as_ref().and_then(|s| s.capacity.as_ref()));
        let (Some(have_bytes), Some(want_bytes)) = (podspec::bytes(have), podspec::bytes(want))
        else {
            continue;
        };
        let capacity_bytes = capacity.and_then(podspec::bytes);
        let (patch, pending) = if want_bytes < have_bytes {
            (false, Some(Pending::CannotShrink))
        } else if want_bytes > have_bytes && !allowed {
            (false, Some(Pending::WaitingForRelease))
        } else if want_bytes > have_bytes {
            (true, Some(Pending::Expanding))
        } else if capacity_bytes.is_some_and(|c| c < want_bytes) {
            (false, Some(Pending::Expanding))
        } else {
            continue;
        };
        out.push(Resize {
            claim: claim.name_any(),
            have: have.0.clone(),
            capacity: capacity.map(|c| c.0.clone()),
            want: want.0.clone(),
            patch,
            pending,
        });
    }
    out
}

/// Patches the claims `plan` says to grow; a refusal is kept in the plan, not returned: the
/// rest of the shard goes on.
pub(super) async fn grow(client: &Client, namespace: &str, plan: &mut [Resize]) {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    for resize in plan.iter_mut().filter(|r| r.patch) {
        let body = serde_json::json!({
            "spec": {"resources": {"requests": {"storage": resize.want}}}
        });
        match api
            .patch(&resize.claim, &PatchParams::default(), &Patch::Merge(&body))
            .await
        {
            Ok(_) => tracing::info!(
                claim = %resize.claim,
                from = %resize.have,
                to = %resize.want,
                "asked for a larger data volume"
            ),
            Err(error) => {
                let message = match &error {
                    kube::Error::Api(status) => status.message.clone(),
                    other => other.to_string(),
                };
                tracing::warn!(claim = %resize.claim, %message, "a larger data volume was refused");
                resize.pending = Some(Pending::Refused(message));
            }
        }
    }
}

/// The shard's `DataVolumeResizePending` condition: `None` when every claim is its pool's size.
pub(super) fn condition(plan: &[Resize]) -> Option<Readiness> {
    let worst = plan.iter().filter_map(|r| r.pending.as_ref()).min()?;
    let reason = match worst {
        Pending::Refused(_) => "ResizeRefused",
        Pending::CannotShrink => "CannotShrink",
        Pending::WaitingForRelease => "WaitingForRelease",
        Pending::Expanding => "Expanding",
    };
    let lines: Vec<String> = plan
        .iter()
        .filter_map(|r| {
            let claim = &r.claim;
            let (have, want) = (&r.have, &r.want);
            Some(match r.pending.as_ref()? {
                Pending::Refused(why) => {
                    format!("claim {claim}: {have} -> {want} refused: {why}")
                }
                Pending::CannotShrink => format!(
                    "claim {claim} has {have} and its pool asks for {want}: a volume never \
                     shrinks (new tablets get {want})"
                ),
                Pending::WaitingForRelease => format!(
                    "claim {claim}: {have} -> {want} waits: the External update strategy grows \
                     volumes only with storage in spec.updateStrategy.external.\
                     allowResourceChanges (or use Immediate)"
                ),
                Pending::Expanding => format!(
                    "claim {claim}: expanding to {want} (capacity {})",
                    r.capacity.as_deref().unwrap_or("unknown, not bound yet")
                ),
            })
        })
        .collect();
    Some(Readiness::new(true, reason, lines.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::shared::{ExternalUpdateStrategyOptions, VitessClusterUpdateStrategy};
    use k8s_openapi::api::core::v1::{
        PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, Pod, VolumeResourceRequirements,
    };
    use kube::api::ObjectMeta;

    fn shard(strategy: Option<UpdateStrategyType>, allow: Option<&[&str]>) -> VitessShard {
        let mut shard = VitessShard::new("s", Default::default());
        shard.spec.update_strategy = Some(VitessClusterUpdateStrategy {
            type_: strategy,
            external: allow.map(|a| ExternalUpdateStrategyOptions {
                allow_resource_changes: Some(a.iter().map(|r| r.to_string()).collect()),
            }),
        });
        shard
    }

    fn tablet(have: &str, capacity: Option<&str>, want: &str) -> Observed {
        let storage = |q: &str| [("storage".to_string(), Quantity(q.into()))].into();
        Observed {
            alias: "zone1-1".into(),
            pod: Pod::default(),
            claim: Some(PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("c".into()),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(storage(have)),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                status: capacity.map(|c| PersistentVolumeClaimStatus {
                    capacity: Some(storage(c)),
                    ..PersistentVolumeClaimStatus::default()
                }),
            }),
            want_storage: Some(Quantity(want.into())),
            wanted: crate::controller::drain::Wanted::Current,
        }
    }

    fn pending(shard: &VitessShard, t: Observed) -> (bool, Option<Pending>) {
        let plan = plan(shard, &[t]);
        plan.first()
            .map_or((false, None), |r| (r.patch, r.pending.clone()))
    }

    #[test]
    fn volumes_grow_under_immediate_or_when_external_allows_storage() {
        let grown = (true, Some(Pending::Expanding));
        let bigger = || tablet("5Gi", Some("5Gi"), "6Gi");
        assert_eq!(
            pending(&shard(Some(UpdateStrategyType::Immediate), None), bigger()),
            grown
        );
        let allowed = shard(Some(UpdateStrategyType::External), Some(&["storage"]));
        assert_eq!(pending(&allowed, bigger()), grown);
        for external in [
            shard(None, None),
            shard(Some(UpdateStrategyType::External), Some(&["cpu"])),
        ] {
            assert_eq!(
                pending(&external, bigger()),
                (false, Some(Pending::WaitingForRelease))
            );
        }
    }

    #[test]
    fn a_volume_never_shrinks_and_one_being_expanded_is_said_until_it_has_the_size() {
        let immediate = shard(Some(UpdateStrategyType::Immediate), None);
        assert_eq!(
            pending(&immediate, tablet("6Gi", Some("6Gi"), "5Gi")),
            (false, Some(Pending::CannotShrink))
        );
        assert_eq!(
            pending(&immediate, tablet("6Gi", Some("5Gi"), "6Gi")),
            (false, Some(Pending::Expanding))
        );
        // The same size written another way is the same size.
        assert_eq!(
            pending(&immediate, tablet("6Gi", Some("6442450944"), "6144Mi")),
            (false, None)
        );
    }

    #[test]
    fn the_condition_names_every_claim_and_the_worst_reason() {
        assert_eq!(condition(&[]), None);
        let resize = |claim: &str, pending: Pending| Resize {
            claim: claim.into(),
            have: "5Gi".into(),
            capacity: Some("5Gi".into()),
            want: "6Gi".into(),
            patch: false,
            pending: Some(pending),
        };
        let state = condition(&[
            resize("a", Pending::Expanding),
            resize(
                "b",
                Pending::Refused("only dynamically provisioned pvc can be resized".into()),
            ),
        ])
        .expect("pending");
        assert_eq!(state.status(), "True");
        assert_eq!(state.reason, "ResizeRefused");
        assert_eq!(
            state.message,
            "claim a: expanding to 6Gi (capacity 5Gi); claim b: 5Gi -> 6Gi refused: only \
             dynamically provisioned pvc can be resized"
        );
    }
}
