//! What can go wrong in the job store, classified once so the RPC layer maps it in one place.

use sea_orm::DbErr;

use crate::domain::job::{JobId, JobState};

/// Which allowance a create would exceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    Daily,
    Monthly,
    Concurrent,
}

impl std::fmt::Display for QuotaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QuotaKind::Daily => "daily",
            QuotaKind::Monthly => "monthly",
            QuotaKind::Concurrent => "concurrent",
        })
    }
}

/// A job store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the job database {url}: {source}")]
    Connect {
        /// The URL with any password masked.
        url: String,
        source: DbErr,
    },
    #[error("cannot create the folder {path} for the SQLite database: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("migrating the job database failed: {0}")]
    Migrate(DbErr),
    #[error("job {0} not found")]
    NotFound(JobId),
    #[error("job {id} cannot go from {from} to {to}")]
    IllegalTransition {
        id: JobId,
        from: JobState,
        to: JobState,
    },
    #[error("worker {worker} no longer holds the lease on job {id} (now {state})")]
    LeaseLost {
        id: JobId,
        worker: String,
        state: JobState,
    },
    #[error("the page token is not one this listing handed out")]
    InvalidPageToken,
    #[error("{kind} quota exceeded: {used} of {limit} used")]
    QuotaExceeded {
        kind: QuotaKind,
        used: u64,
        limit: u64,
    },
    #[error("job row {id} is corrupt: {problem}")]
    CorruptRow { id: String, problem: String },
    #[error("job database error: {0}")]
    Database(#[from] DbErr),
}

/// The classes of [`StoreError`] that callers react to differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// The database cannot be reached or set up; retrying later may help.
    Unavailable,
    NotFound,
    /// The job is not in a state that allows the operation.
    FailedPrecondition,
    /// The caller's worker lost the job to expiry, cancellation or another replica.
    LeaseLost,
    InvalidArgument,
    QuotaExceeded(QuotaKind),
    Internal,
}

impl StoreError {
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::Connect { .. } | StoreError::CreateDir { .. } | StoreError::Migrate(_) => {
                StoreErrorKind::Unavailable
            }
            StoreError::NotFound(_) => StoreErrorKind::NotFound,
            StoreError::IllegalTransition { .. } => StoreErrorKind::FailedPrecondition,
            StoreError::LeaseLost { .. } => StoreErrorKind::LeaseLost,
            StoreError::InvalidPageToken => StoreErrorKind::InvalidArgument,
            StoreError::QuotaExceeded { kind, .. } => StoreErrorKind::QuotaExceeded(*kind),
            StoreError::CorruptRow { .. } => StoreErrorKind::Internal,
            StoreError::Database(err) => match err {
                DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => StoreErrorKind::Unavailable,
                _ => StoreErrorKind::Internal,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_classify_each_error() {
        let id = JobId::generate();
        assert_eq!(
            StoreError::NotFound(id.clone()).kind(),
            StoreErrorKind::NotFound
        );
        let illegal = StoreError::IllegalTransition {
            id: id.clone(),
            from: JobState::Succeeded,
            to: JobState::Cancelled,
        };
        assert_eq!(illegal.kind(), StoreErrorKind::FailedPrecondition);
        assert_eq!(
            illegal.to_string(),
            format!("job {id} cannot go from SUCCEEDED to CANCELLED")
        );
        let quota = StoreError::QuotaExceeded {
            kind: QuotaKind::Concurrent,
            used: 2,
            limit: 2,
        };
        assert_eq!(
            quota.kind(),
            StoreErrorKind::QuotaExceeded(QuotaKind::Concurrent)
        );
        assert_eq!(quota.to_string(), "concurrent quota exceeded: 2 of 2 used");
        assert_eq!(
            StoreError::InvalidPageToken.kind(),
            StoreErrorKind::InvalidArgument
        );
        assert_eq!(
            StoreError::Database(DbErr::Custom("x".into())).kind(),
            StoreErrorKind::Internal
        );
    }
}
