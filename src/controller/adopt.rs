//! Deployments another writer made (the Go operator, before a takeover) whose pod template
//! already runs what ours would ([`crate::desired::equivalent`]: flag spellings, API defaults
//! and the pod securityContext aside) keep that template, so their pods are not replaced; etcd
//! member pods likewise are kept as they are ([`member`]).
//!
//! Pure: [`deployment`] rewrites the Deployment about to be applied, from the one listed. The
//! kept template is marked with the hash of the template ours would have had
//! ([`labels::rollout::ADOPTED_FOR`]); while ours is still that, the kept one is applied again.
//! When the spec changes (ours hashes otherwise), ours is applied and the mark goes with it —
//! a field a user removes is removed, as for a Deployment ours made.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::drain::Rollout;
use super::hold::{self, Hold};
use super::{Context, Error};
use crate::desired::equivalent;
use crate::domain::labels;
use crate::k8s::applier::Applier;
use crate::k8s::apply;

/// Whether `object` (a VitessCell, VitessKeyspace or VitessShard) still holds what another
/// writer gave it: it has a controller (a parent made it) but our parent controller has not
/// applied it yet. Its spec is then the other writer's (the Go operator's, just after a
/// takeover), and acting on it could roll pods for a spec that is about to change: its
/// reconcile waits for the parent's apply (which wakes it).
pub fn awaiting_parent<K: Resource>(object: &K) -> bool {
    let meta = object.meta();
    let has_controller = meta
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true));
    has_controller && !apply::applied_by_us(meta)
}

/// The parent's Deployments that `selector` matches, in one full list: each of `desired`
/// applied (unless unchanged, given the applier's cache), with the listed template kept when
/// [`deployment`] adopts it or when a change waits for a release under `rollout`
/// ([`hold`](super::hold); `parent_released`: the parent carries a release for them); those
/// listed, controlled by the parent and no longer desired, pruned. A release on a Deployment
/// is removed once ours is applied. Returns the applied Deployments in `desired`'s order
/// (a held one annotated `rollout.planetscale.com/scheduled`).
pub async fn deployments<P>(
    applier: &Applier<'_, P>,
    selector: &str,
    desired: Vec<Deployment>,
    rollout: Rollout,
    parent_released: bool,
) -> Result<Vec<Deployment>, Error>
where
    P: Resource<DynamicType = ()>,
{
    let owner = applier.owner();
    let namespace = owner.meta().namespace.clone().unwrap_or_default();
    let uid = owner.meta().uid.clone().unwrap_or_default();
    let described = format!("{} {namespace}/{}", P::kind(&()), owner.name_any());
    let listed: Vec<Deployment> =
        apply::labelled::<Deployment>(applier.client(), &namespace, selector, &described)
            .await?
            .into_iter()
            .filter(|d| apply::controlled_by(&d.metadata, &uid))
            .collect();
    let mut names = BTreeSet::new();
    let mut applied = Vec::with_capacity(desired.len());
    for mut wanted in desired {
        let name = wanted.name_any();
        let now = listed.iter().find(|d| d.name_any() == name);
        let ours = wanted
            .spec
            .as_ref()
            .map(|s| crate::desired::content_hash(&s.template))
            .unwrap_or_default();
        hold::mark(&mut wanted, &ours);
        let held = match deployment(&mut wanted, now) {
            Template::Kept => {
                tracing::debug!(deployment = %name, "kept the pod template another writer made");
                Hold::Apply
            }
            other => {
                if let Template::Differs(differences) = other {
                    tracing::info!(
                        deployment = %name,
                        %differences,
                        "Deployment made by another writer differs from ours"
                    );
                }
                hold::deployment(&mut wanted, now, &ours, rollout, parent_released)
            }
        };
        let newly_held = match &held {
            Hold::Held(note) => now
                .is_some_and(|d| !d.annotations().contains_key(labels::rollout::SCHEDULED))
                .then_some(note.as_str()),
            Hold::Apply => None,
        };
        let result = applier.unless_unchanged(wanted, now.cloned()).await?;
        if let Some(note) = newly_held {
            tracing::info!(deployment = %name, %note, "pod template change waits for a release");
            applier
                .events()
                .publish(
                    owner,
                    EventType::Normal,
                    crate::k8s::events::UPDATE_SCHEDULED,
                    &format!(
                        "Deployment {name}: {note} (annotate it {})",
                        labels::rollout::RELEASED
                    ),
                )
                .await;
        }
        if held == Hold::Apply {
            unschedule(applier, &result).await?;
        }
        applied.push(result);
        names.insert(name);
    }
    applier
        .prune_listed::<Deployment>(listed.into_iter().map(|d| d.metadata).collect(), &names)
        .await?;
    Ok(applied)
}

/// Removes what is left of a rollout from a Deployment that now runs ours: a release (used
/// up, as the Go operator removes it) and a `scheduled` note another writer set (ours goes
/// with the apply that stops carrying it). No request when there is neither.
async fn unschedule<P>(applier: &Applier<'_, P>, applied: &Deployment) -> Result<(), Error>
where
    P: Resource<DynamicType = ()>,
{
    let left: Vec<String> = [labels::rollout::RELEASED, labels::rollout::SCHEDULED]
        .into_iter()
        .filter(|key| applied.annotations().contains_key(*key))
        .map(str::to_string)
        .collect();
    if left.is_empty() {
        return Ok(());
    }
    tracing::info!(deployment = %applied.name_any(), ?left, "runs our pod template: rollout annotations removed");
    apply::annotate::<Deployment>(
        applier.client(),
        &applied.metadata,
        &Default::default(),
        &left,
    )
    .await?;
    Ok(())
}

/// What [`deployment`] did with the listed Deployment's template.
#[derive(Debug, PartialEq, Eq)]
pub enum Template {
    /// Ours is applied (nothing listed, made by us, or not equivalent).
    Ours,
    /// The listed template is kept (adopted now or earlier); the Deployment's pods stay.
    Kept,
    /// Another writer's template that differs from ours: the differences, for the log.
    Differs(String),
}

/// Rewrites `desired` to keep `observed`'s pod template when that is adopted (see the module
/// documentation).
pub fn deployment(desired: &mut Deployment, observed: Option<&Deployment>) -> Template {
    let Some(observed) = observed else {
        return Template::Ours;
    };
    let (Some(want), Some(seen)) = (desired.spec.as_mut(), observed.spec.as_ref()) else {
        return Template::Ours;
    };
    let ours = crate::desired::content_hash(&want.template);
    if !marked_for(&observed.metadata, &ours) {
        if apply::applied_by_us(&observed.metadata) {
            return Template::Ours;
        }
        let differences = template_differences(&seen.template, &want.template);
        if !differences.is_empty() {
            return Template::Differs(equivalent::describe(&differences));
        }
    }
    want.template = seen.template.clone();
    desired
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(labels::rollout::ADOPTED_FOR.into(), ours);
    Template::Kept
}

/// What [`member`] decided for one etcd member pod.
#[derive(Debug, PartialEq, Eq)]
pub enum Member {
    /// Apply ours: no pod yet, or one this operator applied.
    Apply,
    /// Keep the pod as it is, at no request: adopted earlier, and ours is still what it was
    /// adopted for.
    Keep,
    /// Another writer's pod that runs what ours would: mark it adopted (one apply of the mark,
    /// [`apply::adopt`]), then keep it.
    Adopt(String),
    /// Another writer's pod that runs something else: kept as it is all the same (a member holds
    /// the topology, and its spec cannot change in place); the differences, for the log.
    Differs(String),
    /// Our own pod, built from another spec than ours is now (its desired-state hash differs;
    /// or, made before pods carried one, it runs something else): a pod's spec cannot change
    /// in place, so it is never applied over but recreated in a rolling update. What differs,
    /// for the log and the Event.
    Outdated(String),
}

/// What to do with the member pod `observed` (the listed pod of `desired`'s name), see
/// [`Member`]. A pod's spec is immutable but for images, so applying ours over an equivalent
/// pod another writer made would be refused (flags spelled otherwise are another spec): an
/// adopted pod is marked with the hash of the spec ours had ([`labels::rollout::ADOPTED_FOR`])
/// and left alone while ours hashes the same.
pub fn member(desired: &Pod, observed: Option<&Pod>) -> Member {
    let Some(observed) = observed else {
        return Member::Apply;
    };
    let ours = crate::desired::content_hash(&desired.spec);
    if marked_for(&observed.metadata, &ours) {
        return Member::Keep;
    }
    if apply::applied_by_us(&observed.metadata) {
        // Our member pods carry the hash of the spec they were built from (the builder's
        // DESIRED_STATE_HASH is this same content hash of the spec).
        let built_from = observed
            .annotations()
            .get(labels::rollout::DESIRED_STATE_HASH);
        if built_from == Some(&ours) {
            return Member::Apply;
        }
        let differences = running_pod_differences(observed, desired);
        return match built_from {
            None if differences.is_empty() => Member::Apply,
            // Only what the equivalence leaves out differs (affinity, spread, init
            // containers' commands): a running pod cannot take that either.
            _ if differences.is_empty() => Member::Outdated(
                "scheduling settings or init containers, which a running pod cannot change".into(),
            ),
            _ => Member::Outdated(equivalent::describe(&differences)),
        };
    }
    let differences = running_pod_differences(observed, desired);
    if differences.is_empty() {
        Member::Adopt(ours)
    } else {
        Member::Differs(equivalent::describe(&differences))
    }
}

/// Whether `meta` carries the adoption mark for the desired content hashed `hash`.
fn marked_for(meta: &ObjectMeta, hash: &str) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(labels::rollout::ADOPTED_FOR))
        .is_some_and(|mark| mark == hash)
}

/// How the running pod `observed` differs from `desired` ([`equivalent::running_pod`], in
/// the pod's namespace): tablets and etcd members are judged alike.
pub fn running_pod_differences(observed: &Pod, desired: &Pod) -> Vec<equivalent::Difference> {
    let value = |spec| serde_json::to_value(spec).unwrap_or_default();
    let namespace = observed.namespace().unwrap_or_default();
    equivalent::running_pod(&value(&observed.spec), &value(&desired.spec), &namespace)
}

/// The Event of a pod another writer made that is kept as it is, on `owner`.
pub async fn publish_adopted<K: Resource<DynamicType = ()>>(ctx: &Context, owner: &K, pod: &str) {
    ctx.events
        .publish(
            owner,
            EventType::Normal,
            "Adopted",
            &format!(
                "Pod {pod} (made by another writer) already runs this spec: kept as it is, not restarted"
            ),
        )
        .await;
}

/// The pod template's labels and annotations ours sets must be there; its spec equivalent.
pub(super) fn template_differences(
    observed: &k8s_openapi::api::core::v1::PodTemplateSpec,
    desired: &k8s_openapi::api::core::v1::PodTemplateSpec,
) -> Vec<equivalent::Difference> {
    let value = |spec| serde_json::to_value(spec).unwrap_or_default();
    let mut out = equivalent::pod_spec(&value(&observed.spec), &value(&desired.spec));
    let (seen, want) = (
        observed.metadata.clone().unwrap_or_default(),
        desired.metadata.clone().unwrap_or_default(),
    );
    for (what, seen, want) in [
        ("labels", seen.labels, want.labels),
        ("annotations", seen.annotations, want.annotations),
    ] {
        let seen = seen.unwrap_or_default();
        for (key, value) in want.unwrap_or_default() {
            if seen.get(&key) != Some(&value) {
                out.push(equivalent::Difference {
                    path: format!("template.metadata.{what}.{key}"),
                    desired: value,
                    observed: seen.get(&key).cloned().unwrap_or_default(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    use crate::controller::testing::example_vtgate as vtgate;

    /// `ours` as the Go operator writes it: flags with underscores, no securityContext, no
    /// server-side apply of ours.
    fn go_made(ours: &Deployment) -> Deployment {
        let mut go = ours.clone();
        let pod = go.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
        pod.security_context = None;
        for arg in pod.containers[0].args.iter_mut().flatten() {
            let (name, value) = arg.split_once('=').unwrap();
            *arg = format!(
                "--{}={value}",
                name.trim_start_matches('-').replace('-', "_")
            );
        }
        go
    }

    fn template(d: &Deployment) -> &k8s_openapi::api::core::v1::PodTemplateSpec {
        &d.spec.as_ref().unwrap().template
    }

    #[test]
    fn a_go_made_equivalent_template_is_kept_and_marked_until_ours_changes() {
        let ours = vtgate();
        let go = go_made(&ours);
        let mut desired = ours.clone();
        assert_eq!(deployment(&mut desired, Some(&go)), Template::Kept);
        assert_eq!(template(&desired), template(&go));
        let mark = desired.annotations()[labels::rollout::ADOPTED_FOR].clone();
        assert_eq!(mark, crate::desired::content_hash(template(&ours)));

        // Applied by us with the mark: kept again while ours is the same.
        let mut applied = desired.clone();
        applied.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some(apply::FIELD_MANAGER.into()),
            operation: Some("Apply".into()),
            ..ManagedFieldsEntry::default()
        }]);
        let mut again = ours.clone();
        assert_eq!(deployment(&mut again, Some(&applied)), Template::Kept);
        assert_eq!(template(&again), template(&go));

        // The spec changed (a resource removed, say): ours, without the mark.
        let mut changed = ours.clone();
        let pod = changed
            .spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap();
        pod.containers[0].resources = None;
        assert_eq!(deployment(&mut changed, Some(&applied)), Template::Ours);
        assert!(pod_of(&changed).containers[0].resources.is_none());
        assert!(
            !changed
                .annotations()
                .contains_key(labels::rollout::ADOPTED_FOR)
        );
    }

    fn pod_of(d: &Deployment) -> &k8s_openapi::api::core::v1::PodSpec {
        template(d).spec.as_ref().unwrap()
    }

    #[test]
    fn a_child_its_parent_made_waits_until_our_parent_controller_has_applied_it() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
        let mut cell =
            crate::desired::cluster::children(&crate::controller::testing::example_cluster())
                .expect("children")
                .cells
                .remove(0);
        // Made by hand (no controller): never waits.
        assert!(!awaiting_parent(&cell));
        cell.metadata.owner_references = Some(vec![OwnerReference {
            controller: Some(true),
            kind: "VitessCluster".into(),
            name: "example".into(),
            ..OwnerReference::default()
        }]);
        // The Go operator's, as a takeover finds it: waits.
        assert!(awaiting_parent(&cell));
        cell.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some(apply::FIELD_MANAGER.into()),
            operation: Some("Apply".into()),
            ..ManagedFieldsEntry::default()
        }]);
        assert!(!awaiting_parent(&cell));
    }

    #[test]
    fn a_go_made_template_that_runs_something_else_is_replaced_and_says_why() {
        let ours = vtgate();
        let mut go = go_made(&ours);
        let pod = go.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
        pod.containers[0].image = Some("vitess/lite:v23.0.0".into());
        let mut desired = ours.clone();
        match deployment(&mut desired, Some(&go)) {
            Template::Differs(why) => assert!(why.contains("image"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(template(&desired), template(&ours));
        assert_eq!(deployment(&mut ours.clone(), None), Template::Ours);
    }
}
