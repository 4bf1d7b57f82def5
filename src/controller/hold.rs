//! A changed pod template of a stateless Deployment (vtctld, vtgate, vtorc, vtadmin) under
//! the update strategy, as the Go operator rolls them out: with `Immediate` it is applied at
//! once; with `External` (the default) the Deployment takes everything else (labels,
//! replicas) while its running template is kept and the Deployment is annotated
//! `rollout.planetscale.com/scheduled` saying what would change, until someone adds
//! `rollout.planetscale.com/released` (on the Deployment, or for vtgate on its VitessCell,
//! which is where the Go operator holds vtgate's changes). A release is used up: it is
//! removed once ours is applied.
//!
//! Pure: [`deployment`] rewrites the Deployment about to be applied, given the one listed.
//! Which of our templates a Deployment runs is its mark, [`labels::rollout::DESIRED_STATE_HASH`]
//! (the content hash of our template when it was applied); one without a mark (made before
//! Deployments carried one, or by another writer) is judged on what it runs (`equivalent`), so
//! that an upgrade of the operator holds nothing that would not change.

use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;

use super::drain::Rollout;
use crate::domain::labels;

/// What [`deployment`] did with the desired template.
#[derive(Debug, PartialEq, Eq)]
pub enum Hold {
    /// Ours is applied: nothing listed, up to date, `Immediate`, or released.
    Apply,
    /// The running template is kept until released; what ours would change.
    Held(String),
}

/// Marks `desired` as running our template hashed `ours`, the mark of a Deployment applied
/// with its template as built (or with an equivalent one kept by adoption).
pub fn mark(desired: &mut Deployment, ours: &str) {
    desired
        .annotations_mut()
        .insert(labels::rollout::DESIRED_STATE_HASH.into(), ours.into());
}

/// Whether `observed` carries a release of its own.
pub fn released(observed: &Deployment) -> bool {
    observed
        .annotations()
        .contains_key(labels::rollout::RELEASED)
}

/// Rewrites `desired` (marked by [`mark`] with `ours`, the hash of its template as built) to
/// keep `observed`'s template when a change must wait for a release (see the module
/// documentation). `parent_released`: the parent object carries a release for its children.
pub fn deployment(
    desired: &mut Deployment,
    observed: Option<&Deployment>,
    ours: &str,
    rollout: Rollout,
    parent_released: bool,
) -> Hold {
    let Some(observed) = observed else {
        return Hold::Apply;
    };
    let (Some(want), Some(seen)) = (desired.spec.as_mut(), observed.spec.as_ref()) else {
        return Hold::Apply;
    };
    let runs = observed
        .annotations()
        .get(labels::rollout::DESIRED_STATE_HASH)
        .cloned();
    if runs.as_deref() == Some(ours) {
        return Hold::Apply;
    }
    let differences = super::adopt::template_differences(&seen.template, &want.template);
    if runs.is_none() && differences.is_empty() {
        return Hold::Apply;
    }
    if rollout == Rollout::Immediate || released(observed) || parent_released {
        return Hold::Apply;
    }
    want.template = seen.template.clone();
    let annotations = desired.annotations_mut();
    match runs {
        Some(runs) => annotations.insert(labels::rollout::DESIRED_STATE_HASH.into(), runs),
        None => annotations.remove(labels::rollout::DESIRED_STATE_HASH),
    };
    let what = if differences.is_empty() {
        // Only what the equivalence leaves out changed: a field ours no longer sets, say.
        "fields the operator no longer sets, or ones it does not compare".to_string()
    } else {
        crate::desired::equivalent::describe(&differences)
    };
    let note = format!("vitess-operator: the pod template changed ({what}); release it to roll");
    annotations.insert(labels::rollout::SCHEDULED.into(), note.clone());
    Hold::Held(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::controller::testing::example_vtgate as vtgate;

    fn hash(d: &Deployment) -> String {
        crate::desired::content_hash(&d.spec.as_ref().expect("spec").template)
    }

    fn args(d: &Deployment) -> Vec<String> {
        let pod = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        pod.expect("pod").containers[0]
            .args
            .clone()
            .unwrap_or_default()
    }

    /// The Deployment as applied from `built` and read back.
    fn applied(built: &Deployment) -> Deployment {
        let mut d = built.clone();
        mark(&mut d, &hash(built));
        d
    }

    /// `running` with a changed flag as the desired Deployment, marked with its own hash.
    fn changed(running: &Deployment) -> (Deployment, String) {
        let mut next = running.clone();
        next.metadata.annotations = None;
        let spec = next.spec.as_mut().expect("spec");
        spec.template.spec.as_mut().expect("pod").containers[0]
            .args
            .get_or_insert_with(Vec::new)
            .push("--grpc-max-message-size=1234".into());
        spec.replicas = Some(5);
        let ours = hash(&next);
        mark(&mut next, &ours);
        (next, ours)
    }

    #[test]
    fn under_external_a_changed_template_waits_for_a_release_and_the_rest_applies() {
        let running = applied(&vtgate());
        let (mut next, ours) = changed(&running);
        let held = deployment(&mut next, Some(&running), &ours, Rollout::External, false);
        let Hold::Held(note) = held else {
            panic!("not held: {held:?}");
        };
        assert!(note.contains("--grpc-max-message-size"), "{note}");
        assert_eq!(args(&next), args(&running), "the running template is kept");
        assert_eq!(next.spec.as_ref().and_then(|s| s.replicas), Some(5));
        assert_eq!(next.annotations()[labels::rollout::SCHEDULED], note);
        assert_eq!(
            next.annotations()[labels::rollout::DESIRED_STATE_HASH],
            hash(&running),
            "still marked with what it runs"
        );

        // Held again, to the same body, while nothing is released.
        let held_running = next.clone();
        let (mut again, ours) = changed(&running);
        deployment(
            &mut again,
            Some(&held_running),
            &ours,
            Rollout::External,
            false,
        );
        assert_eq!(again, next);
    }

    #[test]
    fn a_release_on_the_deployment_or_its_parent_or_immediate_applies_ours() {
        let running = applied(&vtgate());
        let (built, ours) = changed(&running);
        let mut released = running.clone();
        released
            .annotations_mut()
            .insert(labels::rollout::RELEASED.into(), String::new());
        for (observed, rollout, parent) in [
            (&released, Rollout::External, false),
            (&running, Rollout::External, true),
            (&running, Rollout::Immediate, false),
        ] {
            let mut next = built.clone();
            assert_eq!(
                deployment(&mut next, Some(observed), &ours, rollout, parent),
                Hold::Apply
            );
            assert_eq!(next, built, "{rollout:?}, parent released: {parent}");
        }
    }

    #[test]
    fn an_unchanged_or_unmarked_equivalent_template_is_never_held() {
        let built = vtgate();
        let ours = hash(&built);
        // Up to date.
        let mut next = built.clone();
        mark(&mut next, &ours);
        let running = applied(&built);
        assert_eq!(
            deployment(&mut next, Some(&running), &ours, Rollout::External, false),
            Hold::Apply
        );
        // Made before Deployments carried a mark, with the same template: ours applies (the
        // mark is added, no pod changes).
        let mut unmarked = built.clone();
        unmarked.metadata.annotations = None;
        assert_eq!(
            deployment(&mut next, Some(&unmarked), &ours, Rollout::External, false),
            Hold::Apply
        );
        // Unmarked and different: held, with no mark until released.
        let (mut changed, ours) = changed(&unmarked);
        assert!(matches!(
            deployment(
                &mut changed,
                Some(&unmarked),
                &ours,
                Rollout::External,
                false
            ),
            Hold::Held(_)
        ));
        assert!(
            !changed
                .annotations()
                .contains_key(labels::rollout::DESIRED_STATE_HASH)
        );
        // Nothing listed: made as built.
        let mut new = built.clone();
        assert_eq!(
            deployment(&mut new, None, &ours, Rollout::External, false),
            Hold::Apply
        );
    }
}
