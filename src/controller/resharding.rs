//! A keyspace's resharding as the Go operator reports it: from vtctld's active VReplication
//! workflows of the keyspace (`GetWorkflows`), the one that moves data between its own shards
//! becomes `status.resharding` (workflow, state, source and target shards), with the
//! conditions `ReshardingActive` (is there one) and `ReshardingInSync` (could traffic be
//! switched to the targets now), under the Go operator's reasons.
//!
//! Pure: [`report`] reads the workflows; the keyspace controller asks vtctld.

use crate::api::keyspace::ReshardingStatus;
use crate::controller::condition::Readiness;
use crate::vitess::Workflow;

pub const RESHARDING_ACTIVE: &str = "ReshardingActive";
pub const RESHARDING_IN_SYNC: &str = "ReshardingInSync";
/// Lag (seconds) under which the targets count as caught up, as in the Go operator.
const MAX_SAFE_LAG_SECONDS: i64 = 10;

/// What the keyspace's status says of resharding.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// `None` without a (single) active resharding.
    pub status: Option<ReshardingStatus>,
    pub active: Readiness,
    pub in_sync: Readiness,
}

/// The report of `workflows` (the keyspace's active ones); `previous` is the workflow the
/// status named before, whose replacement makes the sync state unknown for a reconcile.
pub fn report(workflows: &[Workflow], previous: Option<&ReshardingStatus>) -> Report {
    let reshardings: Vec<&Workflow> = workflows.iter().filter(|w| w.is_resharding()).collect();
    let [workflow] = reshardings.as_slice() else {
        if reshardings.is_empty() {
            let none = || {
                Readiness::new(
                    false,
                    "NoActiveReshardingWorkflow",
                    "No active resharding workflow found.",
                )
            };
            return Report {
                status: None,
                active: none(),
                in_sync: none(),
            };
        }
        let names: Vec<&str> = reshardings.iter().map(|w| w.name.as_str()).collect();
        let message = format!(
            "{} active resharding workflows ({}): which one to follow cannot be told",
            names.len(),
            names.join(", ")
        );
        return Report {
            status: None,
            active: Readiness::unknown("MoreThanOneActiveReshardingWorkflow", message.clone()),
            in_sync: Readiness::unknown("MoreThanOneActiveReshardingWorkflow", message),
        };
    };
    // The streams' states, taken together: any error wins, then any copy, then running.
    let mut errors: Vec<&str> = workflow
        .streams
        .iter()
        .filter(|(_, state, _)| state == "Error")
        .map(|(_, _, message)| message.as_str())
        .collect();
    errors.sort_unstable();
    let copying = workflow
        .streams
        .iter()
        .any(|(_, state, _)| state == "Copying");
    let running = workflow
        .streams
        .iter()
        .any(|(_, state, _)| state == "Running" || state == "Lagging");
    let (state, in_sync, copy_progress) = if let Some(first) = errors.first() {
        let message = format!("VReplication reported an error: {first}");
        ("Error", Readiness::new(false, "Error", message), -1)
    } else if copying {
        let message = "Existing data from the source shards is being backfilled on target shards";
        ("Copying", Readiness::new(false, "Copying", message), -1)
    } else if running {
        let sync = if workflow.max_lag_seconds < MAX_SAFE_LAG_SECONDS {
            Readiness::new(
                true,
                "CaughtUp",
                format!(
                    "VReplication on target shards is caught up to within {MAX_SAFE_LAG_SECONDS} \
                     seconds of the source shards"
                ),
            )
        } else {
            Readiness::new(
                false,
                "Lagging",
                format!(
                    "VReplication on target shards is {} seconds behind the source shards",
                    workflow.max_lag_seconds
                ),
            )
        };
        ("Running", sync, 100)
    } else {
        let message = format!(
            "VReplication workflow {} is in an unknown state",
            workflow.name
        );
        (
            "Unknown",
            Readiness::unknown("UnknownWorkflowState", message),
            -1,
        )
    };
    let in_sync = match previous {
        Some(before) if before.workflow != workflow.name => Readiness::unknown(
            "UnknownWorkflowState",
            format!(
                "VReplication workflow {} replaces the previous workflow {}",
                workflow.name, before.workflow
            ),
        ),
        _ => in_sync,
    };
    Report {
        status: Some(ReshardingStatus {
            workflow: workflow.name.clone(),
            state: state.into(),
            source_shards: workflow.source_shards.clone(),
            target_shards: workflow.target_shards.clone(),
            copy_progress: Some(copy_progress),
        }),
        active: Readiness::new(
            true,
            "ActiveReshardingWorkflow",
            format!(
                "One active resharding workflow was found: {}",
                workflow.name
            ),
        ),
        in_sync,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reshard(name: &str, states: &[&str]) -> Workflow {
        Workflow {
            name: name.into(),
            workflow_type: "Reshard".into(),
            source_keyspace: "users".into(),
            source_shards: vec!["-".into()],
            target_keyspace: "users".into(),
            target_shards: vec!["-80".into(), "80-".into()],
            max_lag_seconds: 0,
            streams: states
                .iter()
                .map(|s| ("-80".to_string(), s.to_string(), format!("{s} here")))
                .collect(),
        }
    }

    #[test]
    fn no_resharding_is_said_and_other_workflows_do_not_count() {
        let mut moving = reshard("move", &["Running"]);
        moving.source_keyspace = "commerce".into();
        let report = report(&[moving], None);
        assert_eq!(report.status, None);
        assert_eq!(report.active.status(), "False");
        assert_eq!(report.active.reason, "NoActiveReshardingWorkflow");
        assert_eq!(report.in_sync.status(), "False");
    }

    #[test]
    fn a_resharding_reports_its_phase_as_the_go_operator_does() {
        let copying = report(&[reshard("split", &["Copying", "Running"])], None);
        let status = copying.status.clone().expect("status");
        assert_eq!(
            (status.workflow.as_str(), status.state.as_str()),
            ("split", "Copying")
        );
        assert_eq!(status.target_shards, ["-80", "80-"]);
        assert_eq!(status.copy_progress, Some(-1));
        assert_eq!(copying.active.status(), "True");
        assert_eq!(
            (copying.in_sync.status(), copying.in_sync.reason.as_str()),
            ("False", "Copying")
        );

        let running = report(&[reshard("split", &["Running"])], None);
        assert_eq!(
            running.status.as_ref().map(|s| s.copy_progress),
            Some(Some(100))
        );
        assert_eq!(
            (running.in_sync.status(), running.in_sync.reason.as_str()),
            ("True", "CaughtUp")
        );
        let mut lagging = reshard("split", &["Running"]);
        lagging.max_lag_seconds = 30;
        assert_eq!(report(&[lagging], None).in_sync.reason, "Lagging");

        let failed = report(&[reshard("split", &["Copying", "Error"])], None);
        assert_eq!(failed.status.map(|s| s.state), Some("Error".into()));
        assert_eq!(
            failed.in_sync.message,
            "VReplication reported an error: Error here"
        );
    }

    #[test]
    fn two_reshardings_or_a_new_one_make_the_sync_unknown() {
        let two = report(
            &[reshard("a", &["Running"]), reshard("b", &["Running"])],
            None,
        );
        assert_eq!(two.status, None);
        assert_eq!(two.active.status(), "Unknown");
        assert_eq!(two.active.reason, "MoreThanOneActiveReshardingWorkflow");
        let before = report(&[reshard("a", &["Running"])], None).status;
        let after = report(&[reshard("b", &["Running"])], before.as_ref());
        assert_eq!(after.in_sync.status(), "Unknown");
        assert_eq!(after.active.status(), "True");
    }
}
