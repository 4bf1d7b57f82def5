//! Why a reconcile could not get an answer from its cluster's vtctld, typed, so that a
//! condition can tell "vtctld could not be reached" from "vtctld answered no".

use crate::domain::labels;
use crate::vitess;

/// Why vtctld gave no usable answer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum VtctldError {
    /// The object does not say which cluster it belongs to.
    #[error("the object has no {} label", labels::CLUSTER)]
    NoClusterLabel,
    /// The object's VitessCluster is not there (not yet, or no longer).
    #[error("waiting for VitessCluster {cluster} to be reconciled")]
    ClusterPending { cluster: String },
    /// The object's VitessCluster could not be read.
    #[error("cannot read VitessCluster {cluster}: {source}")]
    ClusterUnreadable {
        cluster: String,
        source: std::sync::Arc<kube::Error>,
    },
    /// The cluster's vtctld TLS settings cannot be read (which field, which Secret).
    #[error(transparent)]
    Tls(#[from] super::topology::TlsError),
    /// The client could not be made, or the call failed.
    #[error(transparent)]
    Vitess(#[from] vitess::Error),
}

/// The condition reason of a vtctld that answered with an error.
pub const REJECTED: &str = "Rejected";
/// The condition reason of a vtctld that could not be asked or did not answer.
pub const UNREACHABLE: &str = "Unreachable";

impl VtctldError {
    /// [`REJECTED`] when vtctld answered, with an error or without what was asked;
    /// [`UNREACHABLE`] otherwise (not reached, no answer in time, or not asked at all).
    pub fn reason(&self) -> &'static str {
        match self {
            VtctldError::Vitess(
                vitess::Error::Rejected { .. } | vitess::Error::InvalidResponse { .. },
            ) => REJECTED,
            _ => UNREACHABLE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_rejected_and_silence_unreachable() {
        let rejected = VtctldError::Vitess(vitess::Error::Rejected {
            address: "a:1".into(),
            method: "GetShard".into(),
            target: "ks/-".into(),
            code: vitess::Code::FailedPrecondition,
            message: "no".into(),
        });
        assert_eq!(rejected.reason(), REJECTED);
        let down = VtctldError::Vitess(vitess::Error::Unavailable {
            address: "a:1".into(),
            method: "GetShard".into(),
            target: "ks/-".into(),
            message: "refused".into(),
        });
        assert_eq!(down.reason(), UNREACHABLE);
        let pending = VtctldError::ClusterPending {
            cluster: "example".into(),
        };
        assert_eq!(pending.reason(), UNREACHABLE);
        assert_eq!(
            pending.to_string(),
            "waiting for VitessCluster example to be reconciled"
        );
    }
}
