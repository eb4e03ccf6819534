//! `JobStore`: the repository over the `jobs` table.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LockBehavior, LockType, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectOptions, ConnectionTrait, Database,
    DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait, Iterable, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait, TryInsertResult, UpdateMany,
};

use super::entity::jobs;
use super::error::{QuotaKind, StoreError};
use super::outbox::{record_terminal_event, DEFAULT_WEBHOOK_DEADLINE};
use super::page_token::PageToken;
use crate::domain::job::{
    Job, JobFailure, JobId, JobOutcome, JobOutput, JobProgress, JobState, Lease, Stage,
};

/// Where the job database lives when nothing is configured: a SQLite file under `./data`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/renderd.db?mode=rwc";
/// History page size when the caller asks for none (AIP-158 `page_size = 0`).
pub const DEFAULT_PAGE_SIZE: u32 = 10;
/// Larger page sizes are lowered to this.
pub const MAX_PAGE_SIZE: u32 = 100;
/// The failure code of a job whose workers kept dying until its attempts ran out.
pub const ATTEMPTS_EXHAUSTED_CODE: &str = "RENDER_INTERNAL_ERROR";

/// SQLite waits this long for another connection's write transaction before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
const SQLITE_FILE_CONNECTIONS: u32 = 8;
const POSTGRES_CONNECTIONS: u32 = 16;
/// How long opening the database, or waiting for a pooled connection, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What CreateRender asks to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    pub owner: String,
    /// AIP-155 idempotency key; the same key from the same owner returns the original job.
    pub request_id: Option<String>,
    pub video_url: String,
    pub video_name: Option<String>,
    pub scenario_json: String,
    pub options: serde_json::Value,
    /// Validated by the caller (`crate::webhook::CallbackPolicy`); `None` means no webhook.
    pub callback_url: Option<String>,
    /// The W3C `traceparent` of the request that created the job, so the worker's job span
    /// continues that trace (`crate::telemetry::current_traceparent`).
    pub trace_context: Option<String>,
}

/// A worker's current view of a running job. `percent` and `frames_done` are stored as the
/// maximum of the stored and the new value, so progress never goes backwards.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressUpdate {
    pub stage: Stage,
    pub percent: f64,
    pub frames_done: u64,
    pub frames_total: Option<u64>,
    pub fps: Option<f64>,
    pub eta_seconds: Option<f64>,
    pub encoder: Option<String>,
}

/// How many jobs an owner has: created since the day and month starts (cancelled ones not
/// counted), and queued or running now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Usage {
    pub daily: u64,
    pub monthly: u64,
    pub concurrent: u64,
}

/// An owner's allowances, with the windows they are counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaLimits {
    pub daily: u64,
    pub monthly: u64,
    pub concurrent: u64,
    pub day_start: DateTime<Utc>,
    pub month_start: DateTime<Utc>,
}

impl QuotaLimits {
    /// The first allowance that one more job would exceed, checked daily, monthly, concurrent.
    pub fn first_exceeded(&self, usage: &Usage) -> Option<(QuotaKind, u64, u64)> {
        [
            (QuotaKind::Daily, usage.daily, self.daily),
            (QuotaKind::Monthly, usage.monthly, self.monthly),
            (QuotaKind::Concurrent, usage.concurrent, self.concurrent),
        ]
        .into_iter()
        .find(|(_, used, limit)| used >= limit)
    }
}

/// The repository over the `jobs` table. Cheap to clone: it shares one connection pool.
#[derive(Clone, Debug)]
pub struct JobStore {
    db: DatabaseConnection,
    /// How long the webhook event of a terminal transition is retried.
    webhook_deadline: Duration,
}

/// Timestamps are kept to the microsecond, PostgreSQL's precision, so a value read back
/// compares equal to the one written (page tokens rely on it).
pub(super) fn now() -> DateTime<Utc> {
    truncate_to_micros(Utc::now())
}

pub(super) fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

pub(super) fn to_db(t: DateTime<Utc>) -> sea_orm::prelude::DateTimeWithTimeZone {
    t.fixed_offset()
}

pub(super) fn lease_deadline(from: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    let lease = TimeDelta::from_std(lease).unwrap_or(TimeDelta::MAX);
    truncate_to_micros(
        from.checked_add_signed(lease)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    )
}

/// An update of job rows that stamps `updated_at` with `at`: every change to a job but a
/// lease renewal goes through it.
fn change_jobs(at: DateTime<Utc>) -> UpdateMany<jobs::Entity> {
    jobs::Entity::update_many().col_expr(jobs::Column::UpdatedAt, Expr::value(to_db(at)))
}

/// `update` also drops the lease: no worker holds the job any more.
fn release_lease(update: UpdateMany<jobs::Entity>) -> UpdateMany<jobs::Entity> {
    update
        .col_expr(
            jobs::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            jobs::Column::LeaseExpiresAt,
            Expr::value(Option::<sea_orm::prelude::DateTimeWithTimeZone>::None),
        )
}

/// `update` also ends the job at `at`: finished, no estimate left, lease released.
fn end_job(update: UpdateMany<jobs::Entity>, at: DateTime<Utc>) -> UpdateMany<jobs::Entity> {
    release_lease(update)
        .col_expr(jobs::Column::FinishedAt, Expr::value(to_db(at)))
        .col_expr(jobs::Column::EtaSeconds, Expr::value(Option::<f64>::None))
}

/// The URL with any password replaced by `***`, for logs.
pub fn masked_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The file path of a `sqlite:` URL, `None` for in-memory databases.
fn sqlite_file_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        None
    } else {
        Some(path)
    }
}

fn corrupt(id: &str, problem: impl std::fmt::Display) -> StoreError {
    StoreError::CorruptRow {
        id: id.to_owned(),
        problem: problem.to_string(),
    }
}

fn non_negative(id: &str, column: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(id, format!("{column} is negative ({value})")))
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn finite_or_none(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

fn job_from_model(row: jobs::Model) -> Result<Job, StoreError> {
    let jobs::Model {
        id,
        owner,
        request_id,
        video_url,
        video_name,
        scenario_json,
        options,
        state,
        stage,
        progress,
        frames_done,
        frames_total,
        fps,
        eta_seconds,
        encoder,
        created_at,
        updated_at,
        started_at,
        finished_at,
        error_code,
        error_message,
        output_path,
        output_size,
        output_duration,
        lease_owner,
        lease_expires_at,
        attempts,
        // Read on its own by the worker that renders the job (JobStore::trace_context).
        trace_context: _,
        callback_url,
        output_expires_at,
        output_expired_at,
    } = row;
    let job_id = JobId::parse(&id).map_err(|e| corrupt(&id, e))?;
    let state: JobState = state.parse().map_err(|e| corrupt(&id, e))?;
    let stage = stage
        .map(|s| s.parse::<Stage>())
        .transpose()
        .map_err(|e| corrupt(&id, e))?;
    let failure = error_code.map(|code| JobFailure {
        code,
        message: error_message.unwrap_or_default(),
    });
    let output = match output_path {
        Some(path) => Some(JobOutput {
            path,
            size_bytes: non_negative(&id, "output_size", output_size.unwrap_or(0))?,
            duration_seconds: output_duration.unwrap_or(0.0),
            expires_at: output_expires_at.map(|t| t.to_utc()),
            expired_at: output_expired_at.map(|t| t.to_utc()),
        }),
        None => None,
    };
    let lease = match (lease_owner, lease_expires_at) {
        (Some(owner), Some(expires_at)) => Some(Lease {
            owner,
            expires_at: expires_at.to_utc(),
        }),
        _ => None,
    };
    Ok(Job {
        progress: JobProgress {
            stage,
            percent: progress,
            frames_done: non_negative(&id, "frames_done", frames_done)?,
            frames_total: frames_total
                .map(|n| non_negative(&id, "frames_total", n))
                .transpose()?,
            fps,
            eta_seconds,
            encoder,
        },
        attempts: u32::try_from(attempts)
            .map_err(|_| corrupt(&id, format!("attempts is negative ({attempts})")))?,
        id: job_id,
        owner,
        request_id,
        video_url,
        video_name,
        scenario_json,
        options,
        state,
        created_at: created_at.to_utc(),
        updated_at: updated_at.unwrap_or(created_at).to_utc(),
        started_at: started_at.map(|t| t.to_utc()),
        finished_at: finished_at.map(|t| t.to_utc()),
        failure,
        output,
        lease,
        callback_url,
    })
}

fn one_job(rows: Vec<jobs::Model>) -> Result<Option<Job>, StoreError> {
    rows.into_iter().next().map(job_from_model).transpose()
}

/// Rows a worker may take: queued ones, and running ones whose lease ran out with attempts left.
fn claimable(at: DateTime<Utc>, max_attempts: u32) -> Condition {
    Condition::any()
        .add(jobs::Column::State.eq(JobState::Queued.as_str()))
        .add(
            Condition::all()
                .add(jobs::Column::State.eq(JobState::Running.as_str()))
                .add(jobs::Column::LeaseExpiresAt.lt(to_db(at)))
                .add(jobs::Column::Attempts.lt(i64::from(max_attempts))),
        )
}

/// Succeeded jobs whose kept output is due for deletion at `at`.
fn output_due(at: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(jobs::Column::State.eq(JobState::Succeeded.as_str()))
        .add(jobs::Column::OutputPath.is_not_null())
        .add(jobs::Column::OutputExpiredAt.is_null())
        .add(jobs::Column::OutputExpiresAt.lte(to_db(at)))
}

fn held_by(id: &JobId, worker: &str) -> Condition {
    Condition::all()
        .add(jobs::Column::Id.eq(id.as_str()))
        .add(jobs::Column::State.eq(JobState::Running.as_str()))
        .add(jobs::Column::LeaseOwner.eq(worker))
}

impl JobStore {
    /// Opens the database at `url` (`sqlite://…?mode=rwc` or `postgres://…`); for a SQLite file
    /// its folder is created. Call [`JobStore::migrate`] before use.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(url);
        options
            .sqlx_logging(false)
            .connect_timeout(CONNECT_TIMEOUT)
            .acquire_timeout(CONNECT_TIMEOUT);
        if url.starts_with("sqlite:") {
            match sqlite_file_path(url) {
                Some(path) => {
                    if let Some(parent) = std::path::Path::new(path).parent() {
                        if !parent.as_os_str().is_empty() {
                            std::fs::create_dir_all(parent).map_err(|source| {
                                StoreError::CreateDir {
                                    path: parent.display().to_string(),
                                    source,
                                }
                            })?;
                        }
                    }
                    options.max_connections(SQLITE_FILE_CONNECTIONS);
                }
                None => {
                    // Every connection to `:memory:` is its own database: keep exactly one, forever.
                    options
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None);
                }
            }
            options.map_sqlx_sqlite_opts(|opts| opts.busy_timeout(SQLITE_BUSY_TIMEOUT));
        } else {
            options.max_connections(POSTGRES_CONNECTIONS);
        }
        Self::connect_with(options).await
    }

    /// Opens the database with fully caller-chosen options (pool sizes, PostgreSQL schema …).
    pub async fn connect_with(options: ConnectOptions) -> Result<Self, StoreError> {
        let url = masked_url(options.get_url());
        let db = Database::connect(options)
            .await
            .map_err(|source| StoreError::Connect { url, source })?;
        Ok(Self {
            db,
            webhook_deadline: DEFAULT_WEBHOOK_DEADLINE,
        })
    }

    /// The same store, writing webhook events that are retried for `deadline`.
    pub fn with_webhook_deadline(mut self, deadline: Duration) -> Self {
        self.webhook_deadline = deadline;
        self
    }

    /// Brings the schema up to date with every migration in the `migration` crate.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        use migration::MigratorTrait;
        migration::Migrator::up(&self.db, None)
            .await
            .map_err(StoreError::Migrate)
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// A transaction that holds the write lock from its first statement: on SQLite
    /// `BEGIN IMMEDIATE`, so read-then-write sequences in it cannot interleave with other writers.
    pub(super) async fn begin_write(&self) -> Result<DatabaseTransaction, StoreError> {
        let txn = match self.backend() {
            DbBackend::Sqlite => {
                self.db
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..TransactionOptions::default()
                    })
                    .await?
            }
            _ => self.db.begin().await?,
        };
        Ok(txn)
    }

    async fn find_by_request_id<C: ConnectionTrait>(
        conn: &C,
        owner: &str,
        request_id: &str,
    ) -> Result<Option<Job>, StoreError> {
        jobs::Entity::find()
            .filter(jobs::Column::Owner.eq(owner))
            .filter(jobs::Column::RequestId.eq(request_id))
            .one(conn)
            .await?
            .map(job_from_model)
            .transpose()
    }

    async fn find_model<C: ConnectionTrait>(conn: &C, id: &JobId) -> Result<Job, StoreError> {
        jobs::Entity::find_by_id(id.as_str().to_owned())
            .one(conn)
            .await?
            .map(job_from_model)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(id.clone()))
    }

    /// Inserts `new`, or returns the job already stored under its (owner, request_id).
    async fn insert_or_existing<C: ConnectionTrait>(
        conn: &C,
        new: NewJob,
    ) -> Result<(Job, bool), StoreError> {
        if let Some(request_id) = &new.request_id {
            if let Some(existing) = Self::find_by_request_id(conn, &new.owner, request_id).await? {
                return Ok((existing, false));
            }
        }
        let NewJob {
            owner,
            request_id,
            video_url,
            video_name,
            scenario_json,
            options,
            callback_url,
            trace_context,
        } = new;
        let created = to_db(now());
        let row = jobs::ActiveModel {
            id: Set(JobId::generate().as_str().to_owned()),
            owner: Set(owner.clone()),
            request_id: Set(request_id.clone()),
            video_url: Set(video_url),
            video_name: Set(video_name),
            scenario_json: Set(scenario_json),
            options: Set(options),
            state: Set(JobState::Queued.as_str().to_owned()),
            stage: Set(None),
            progress: Set(0.0),
            frames_done: Set(0),
            frames_total: Set(None),
            fps: Set(None),
            eta_seconds: Set(None),
            encoder: Set(None),
            created_at: Set(created),
            updated_at: Set(Some(created)),
            started_at: Set(None),
            finished_at: Set(None),
            error_code: Set(None),
            error_message: Set(None),
            output_path: Set(None),
            output_size: Set(None),
            output_duration: Set(None),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            attempts: Set(0),
            trace_context: Set(trace_context),
            callback_url: Set(callback_url),
            output_expires_at: Set(None),
            output_expired_at: Set(None),
        };
        let inserted = jobs::Entity::insert(row)
            .on_conflict_do_nothing_on([jobs::Column::Owner, jobs::Column::RequestId])
            .exec_with_returning(conn)
            .await?;
        match inserted {
            TryInsertResult::Inserted(model) => Ok((job_from_model(model)?, true)),
            TryInsertResult::Empty | TryInsertResult::Conflicted => {
                // Another transaction stored the same (owner, request_id) first.
                let existing = match &request_id {
                    Some(request_id) => Self::find_by_request_id(conn, &owner, request_id).await?,
                    None => None,
                };
                existing
                    .map(|job| (job, false))
                    .ok_or_else(|| StoreError::Database(sea_orm::DbErr::RecordNotInserted))
            }
        }
    }

    /// Stores a new QUEUED job, committed before this returns. With a `request_id` already used
    /// by the same owner it returns that original job and `false`.
    pub async fn create(&self, new: NewJob) -> Result<(Job, bool), StoreError> {
        let txn = self.begin_write().await?;
        let result = Self::insert_or_existing(&txn, new).await?;
        txn.commit().await?;
        Ok(result)
    }

    /// Like [`JobStore::create`], but refuses with [`StoreError::QuotaExceeded`] when one more job
    /// would exceed `limits`. Counting and inserting happen in one transaction that excludes
    /// every other create for the same owner (SQLite: the write lock; PostgreSQL: an advisory
    /// lock on the owner), so concurrent creates can never admit more than the limits allow.
    /// A replayed `request_id` returns the original job without counting it again.
    pub async fn create_within_quota(
        &self,
        new: NewJob,
        limits: &QuotaLimits,
    ) -> Result<(Job, bool), StoreError> {
        let txn = self.begin_write().await?;
        if self.backend() == DbBackend::Postgres {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                [new.owner.clone().into()],
            ))
            .await?;
        }
        if let Some(request_id) = &new.request_id {
            if let Some(existing) = Self::find_by_request_id(&txn, &new.owner, request_id).await? {
                txn.commit().await?;
                return Ok((existing, false));
            }
        }
        let usage = Self::usage_in(&txn, &new.owner, limits.day_start, limits.month_start).await?;
        if let Some((kind, used, limit)) = limits.first_exceeded(&usage) {
            txn.rollback().await?;
            return Err(StoreError::QuotaExceeded { kind, used, limit });
        }
        let result = Self::insert_or_existing(&txn, new).await?;
        txn.commit().await?;
        Ok(result)
    }

    /// The job with this id, whoever owns it.
    pub async fn get(&self, id: &JobId) -> Result<Job, StoreError> {
        Self::find_model(&self.db, id).await
    }

    /// The job with this id without its scenario (`scenario_json` empty), for status reads.
    pub async fn get_status(&self, id: &JobId) -> Result<Job, StoreError> {
        self.statuses(std::slice::from_ref(id))
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(id.clone()))
    }

    /// The jobs with these ids that exist, in no particular order, WITHOUT their scenarios
    /// (`scenario_json` is empty): the status fan-out polls many jobs in one query and never
    /// needs the up to 5 MB documents.
    pub async fn statuses(&self, ids: &[JobId]) -> Result<Vec<Job>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        jobs::Entity::find()
            .select_only()
            .columns(jobs::Column::iter().filter(|c| !matches!(c, jobs::Column::ScenarioJson)))
            .column_as(Expr::value(""), jobs::Column::ScenarioJson)
            .filter(jobs::Column::Id.is_in(ids.iter().map(|id| id.as_str().to_owned())))
            .all(&self.db)
            .await?
            .into_iter()
            .map(job_from_model)
            .collect()
    }

    /// Jobs newest first, `owner` = `None` listing everyone's (admin). Returns the page and the
    /// token of the next one (`None` on the last page). `page_size` 0 means
    /// [`DEFAULT_PAGE_SIZE`]; more than [`MAX_PAGE_SIZE`] is lowered to it. A token is valid only
    /// with the same `owner` and `states` (empty: every state) it was issued for.
    pub async fn list(
        &self,
        owner: Option<&str>,
        states: &[JobState],
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<(Vec<Job>, Option<String>), StoreError> {
        let page_size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => Ord::min(n, MAX_PAGE_SIZE),
        };
        let mut query = jobs::Entity::find();
        if let Some(owner) = owner {
            query = query.filter(jobs::Column::Owner.eq(owner));
        }
        if !states.is_empty() {
            query = query.filter(jobs::Column::State.is_in(states.iter().map(|s| s.as_str())));
        }
        if let Some(token) = page_token.filter(|t| !t.is_empty()) {
            let after =
                PageToken::decode(token, owner, states).ok_or(StoreError::InvalidPageToken)?;
            let at = to_db(after.created_at);
            query = query.filter(
                Condition::any().add(jobs::Column::CreatedAt.lt(at)).add(
                    Condition::all()
                        .add(jobs::Column::CreatedAt.eq(at))
                        .add(jobs::Column::Id.lt(after.id.as_str())),
                ),
            );
        }
        let rows = query
            .order_by_desc(jobs::Column::CreatedAt)
            .order_by_desc(jobs::Column::Id)
            .limit(u64::from(page_size) + 1)
            .all(&self.db)
            .await?;
        let mut jobs = rows
            .into_iter()
            .map(job_from_model)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if jobs.len() > page_size as usize {
            jobs.truncate(page_size as usize);
            jobs.last().map(|last| {
                PageToken {
                    created_at: last.created_at,
                    id: last.id.clone(),
                }
                .encode(owner, states)
            })
        } else {
            None
        };
        Ok((jobs, next))
    }

    /// Gives worker `worker_id` the oldest job it may take, RUNNING under a lease until
    /// now + `lease`: a QUEUED job, or a RUNNING one whose lease expired (its worker died) with
    /// fewer than `max_attempts` claims so far. Expired jobs that used up their attempts become
    /// FAILED with [`ATTEMPTS_EXHAUSTED_CODE`]. `None` when nothing is waiting.
    pub async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        max_attempts: u32,
    ) -> Result<Option<Job>, StoreError> {
        let at = now();
        let txn = self.begin_write().await?;
        let exhausted = release_lease(change_jobs(at))
            .col_expr(jobs::Column::State, Expr::value(JobState::Failed.as_str()))
            .col_expr(jobs::Column::ErrorCode, Expr::value(ATTEMPTS_EXHAUSTED_CODE))
            .col_expr(
                jobs::Column::ErrorMessage,
                Expr::value(format!(
                    "the render was interrupted {max_attempts} times (its worker stopped renewing the lease)"
                )),
            )
            .col_expr(jobs::Column::FinishedAt, Expr::value(to_db(at)))
            .filter(jobs::Column::State.eq(JobState::Running.as_str()))
            .filter(jobs::Column::LeaseExpiresAt.lt(to_db(at)))
            .filter(jobs::Column::Attempts.gte(i64::from(max_attempts)))
            .exec_with_returning(&txn)
            .await?;
        for row in exhausted {
            record_terminal_event(&txn, &job_from_model(row)?, self.webhook_deadline).await?;
        }

        let candidate = match self.backend() {
            DbBackend::Postgres => {
                // Rows another replica is claiming right now are skipped, not waited for.
                let row = jobs::Entity::find()
                    .select_only()
                    .column(jobs::Column::Id)
                    .filter(claimable(at, max_attempts))
                    .order_by_asc(jobs::Column::CreatedAt)
                    .order_by_asc(jobs::Column::Id)
                    .limit(1)
                    .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                    .into_tuple::<String>()
                    .one(&txn)
                    .await?;
                match row {
                    Some(id) => Condition::all().add(jobs::Column::Id.eq(id)),
                    None => {
                        txn.commit().await?;
                        return Ok(None);
                    }
                }
            }
            _ => {
                // SQLite serialises writers, so one UPDATE … WHERE id IN (SELECT … LIMIT 1) is atomic.
                let oldest = Query::select()
                    .column(jobs::Column::Id)
                    .from(jobs::Entity)
                    .cond_where(claimable(at, max_attempts))
                    .order_by(jobs::Column::CreatedAt, sea_orm::Order::Asc)
                    .order_by(jobs::Column::Id, sea_orm::Order::Asc)
                    .limit(1)
                    .to_owned();
                Condition::all().add(jobs::Column::Id.in_subquery(oldest))
            }
        };
        let claimed = change_jobs(at)
            .col_expr(jobs::Column::State, Expr::value(JobState::Running.as_str()))
            .col_expr(jobs::Column::LeaseOwner, Expr::value(worker_id))
            .col_expr(
                jobs::Column::LeaseExpiresAt,
                Expr::value(to_db(lease_deadline(at, lease))),
            )
            .col_expr(
                jobs::Column::Attempts,
                Expr::col(jobs::Column::Attempts).add(1),
            )
            .col_expr(
                jobs::Column::StartedAt,
                Func::coalesce([Expr::col(jobs::Column::StartedAt), Expr::value(to_db(at))]).into(),
            )
            .filter(candidate)
            .filter(claimable(at, max_attempts))
            .exec_with_returning(&txn)
            .await?;
        txn.commit().await?;
        one_job(claimed)
    }

    /// The row an update guarded by [`held_by`] returned, or why there was none.
    async fn held_job(
        &self,
        rows: Vec<jobs::Model>,
        id: &JobId,
        worker_id: &str,
    ) -> Result<Job, StoreError> {
        match one_job(rows)? {
            Some(job) => Ok(job),
            None => Err(self.lease_lost(id, worker_id).await),
        }
    }

    /// Re-reads a job after a guarded update matched nothing, to say why.
    async fn lease_lost(&self, id: &JobId, worker: &str) -> StoreError {
        match self.get(id).await {
            Ok(job) => StoreError::LeaseLost {
                id: id.clone(),
                worker: worker.to_owned(),
                state: job.state,
            },
            Err(err) => err,
        }
    }

    /// Extends the lease of a job that `worker_id` holds to now + `lease`. Fails with
    /// [`StoreError::LeaseLost`] once the job was cancelled, re-queued or taken by another worker.
    pub async fn renew_lease(
        &self,
        id: &JobId,
        worker_id: &str,
        lease: Duration,
    ) -> Result<Job, StoreError> {
        let rows = jobs::Entity::update_many()
            .col_expr(
                jobs::Column::LeaseExpiresAt,
                Expr::value(to_db(lease_deadline(now(), lease))),
            )
            .filter(held_by(id, worker_id))
            .exec_with_returning(&self.db)
            .await?;
        self.held_job(rows, id, worker_id).await
    }

    /// Persists a worker's progress on a job it holds; `percent` (clamped to 0–100) and
    /// `frames_done` never decrease.
    pub async fn update_progress(
        &self,
        id: &JobId,
        worker_id: &str,
        update: &ProgressUpdate,
    ) -> Result<Job, StoreError> {
        let ProgressUpdate {
            stage,
            percent,
            frames_done,
            frames_total,
            fps,
            eta_seconds,
            encoder,
        } = update;
        let percent = if percent.is_finite() {
            percent.clamp(0.0, 100.0)
        } else {
            0.0
        };
        let rows = change_jobs(now())
            .col_expr(jobs::Column::Stage, Expr::value(stage.as_str()))
            .col_expr(
                jobs::Column::Progress,
                Func::greatest([Expr::col(jobs::Column::Progress), Expr::value(percent)]).into(),
            )
            .col_expr(
                jobs::Column::FramesDone,
                Func::greatest([
                    Expr::col(jobs::Column::FramesDone),
                    Expr::value(to_i64(*frames_done)),
                ])
                .into(),
            )
            .col_expr(
                jobs::Column::FramesTotal,
                Expr::value(frames_total.map(to_i64)),
            )
            .col_expr(jobs::Column::Fps, Expr::value(finite_or_none(*fps)))
            .col_expr(
                jobs::Column::EtaSeconds,
                Expr::value(finite_or_none(*eta_seconds)),
            )
            .col_expr(jobs::Column::Encoder, Expr::value(encoder.clone()))
            .filter(held_by(id, worker_id))
            .exec_with_returning(&self.db)
            .await?;
        self.held_job(rows, id, worker_id).await
    }

    /// Ends a job that `worker_id` holds and releases its lease. A transition the state machine
    /// forbids is [`StoreError::IllegalTransition`]; finishing as CANCELLED a job that was
    /// cancelled meanwhile returns it unchanged.
    pub async fn finish(
        &self,
        id: &JobId,
        worker_id: &str,
        outcome: JobOutcome,
    ) -> Result<Job, StoreError> {
        let target = outcome.state();
        let at = now();
        let mut update = end_job(change_jobs(at), at)
            .col_expr(jobs::Column::State, Expr::value(target.as_str()));
        match outcome {
            JobOutcome::Succeeded(JobOutput {
                path,
                size_bytes,
                duration_seconds,
                expires_at,
                expired_at: _,
            }) => {
                update = update
                    .col_expr(jobs::Column::Progress, Expr::value(100.0))
                    .col_expr(
                        jobs::Column::OutputExpiresAt,
                        Expr::value(expires_at.map(|t| to_db(truncate_to_micros(t)))),
                    )
                    .col_expr(jobs::Column::OutputPath, Expr::value(path))
                    .col_expr(jobs::Column::OutputSize, Expr::value(to_i64(size_bytes)))
                    .col_expr(jobs::Column::OutputDuration, Expr::value(duration_seconds));
            }
            JobOutcome::Failed(JobFailure { code, message }) => {
                update = update
                    .col_expr(jobs::Column::ErrorCode, Expr::value(code))
                    .col_expr(jobs::Column::ErrorMessage, Expr::value(message));
            }
            JobOutcome::Cancelled => {}
        }
        if let Some(job) = self
            .end_with_event(update.filter(held_by(id, worker_id)))
            .await?
        {
            return Ok(job);
        }
        let current = self.get(id).await?;
        if current.state == target && target == JobState::Cancelled {
            return Ok(current);
        }
        if !current.state.can_transition_to(target) {
            return Err(StoreError::IllegalTransition {
                id: id.clone(),
                from: current.state,
                to: target,
            });
        }
        Err(StoreError::LeaseLost {
            id: id.clone(),
            worker: worker_id.to_owned(),
            state: current.state,
        })
    }

    /// Succeeded jobs whose output is past its expiry and not yet deleted, oldest expiry first,
    /// at most `limit` (without their scenarios).
    pub async fn outputs_due(&self, limit: u64) -> Result<Vec<Job>, StoreError> {
        jobs::Entity::find()
            .select_only()
            .columns(jobs::Column::iter().filter(|c| !matches!(c, jobs::Column::ScenarioJson)))
            .column_as(Expr::value(""), jobs::Column::ScenarioJson)
            .filter(output_due(now()))
            .order_by_asc(jobs::Column::OutputExpiresAt)
            .order_by_asc(jobs::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(job_from_model)
            .collect()
    }

    /// Claims the deletion of a due output for `hold` (one conditional UPDATE that pushes its
    /// expiry to now + `hold`, so other replicas skip it meanwhile and retry it after a crash).
    /// Returns whether this caller won the claim.
    pub async fn claim_output_expiry(
        &self,
        id: &JobId,
        hold: Duration,
    ) -> Result<bool, StoreError> {
        let at = now();
        let result = jobs::Entity::update_many()
            .col_expr(
                jobs::Column::OutputExpiresAt,
                Expr::value(to_db(lease_deadline(at, hold))),
            )
            .filter(jobs::Column::Id.eq(id.as_str()))
            .filter(output_due(at))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Records that a claimed output was deleted: the job keeps its row, marked expired.
    pub async fn mark_output_expired(&self, id: &JobId) -> Result<Job, StoreError> {
        let at = now();
        let rows = change_jobs(at)
            .col_expr(jobs::Column::OutputExpiredAt, Expr::value(to_db(at)))
            .filter(jobs::Column::Id.eq(id.as_str()))
            .filter(jobs::Column::OutputExpiredAt.is_null())
            .exec_with_returning(&self.db)
            .await?;
        match one_job(rows)? {
            Some(job) => Ok(job),
            None => self.get(id).await,
        }
    }

    /// Cancels a queued or running job (idempotent: a cancelled job is returned as it is).
    /// A running job's lease is dropped, so its worker learns of it at its next renewal or
    /// progress write. Cancelling a succeeded or failed job is [`StoreError::IllegalTransition`].
    pub async fn cancel(&self, id: &JobId) -> Result<Job, StoreError> {
        let at = now();
        let update = end_job(change_jobs(at), at)
            .col_expr(
                jobs::Column::State,
                Expr::value(JobState::Cancelled.as_str()),
            )
            .filter(jobs::Column::Id.eq(id.as_str()))
            .filter(
                jobs::Column::State.is_in([JobState::Queued.as_str(), JobState::Running.as_str()]),
            );
        if let Some(job) = self.end_with_event(update).await? {
            return Ok(job);
        }
        let current = self.get(id).await?;
        match current.state {
            JobState::Cancelled => Ok(current),
            from => Err(StoreError::IllegalTransition {
                id: id.clone(),
                from,
                to: JobState::Cancelled,
            }),
        }
    }

    /// Runs a guarded update that moves one job to a terminal state and, in the same
    /// transaction, writes its webhook event; `None` when the guard matched nothing.
    async fn end_with_event(
        &self,
        update: UpdateMany<jobs::Entity>,
    ) -> Result<Option<Job>, StoreError> {
        let txn = self.begin_write().await?;
        let ended = one_job(update.exec_with_returning(&txn).await?)?;
        if let Some(job) = &ended {
            record_terminal_event(&txn, job, self.webhook_deadline).await?;
        }
        txn.commit().await?;
        Ok(ended)
    }

    /// Hands a job that `worker_id` holds back to the queue (graceful shutdown); the claim it
    /// made does not count as an attempt.
    pub async fn requeue(&self, id: &JobId, worker_id: &str) -> Result<Job, StoreError> {
        let rows = release_lease(change_jobs(now()))
            .col_expr(jobs::Column::State, Expr::value(JobState::Queued.as_str()))
            .col_expr(
                jobs::Column::Attempts,
                Func::greatest([Expr::col(jobs::Column::Attempts).sub(1), Expr::value(0)]).into(),
            )
            .filter(held_by(id, worker_id))
            .exec_with_returning(&self.db)
            .await?;
        self.held_job(rows, id, worker_id).await
    }

    async fn usage_in<C: ConnectionTrait>(
        conn: &C,
        owner: &str,
        day_start: DateTime<Utc>,
        month_start: DateTime<Utc>,
    ) -> Result<Usage, StoreError> {
        let counted = || {
            jobs::Entity::find()
                .filter(jobs::Column::Owner.eq(owner))
                .filter(jobs::Column::State.ne(JobState::Cancelled.as_str()))
        };
        let daily = counted()
            .filter(jobs::Column::CreatedAt.gte(to_db(day_start)))
            .count(conn)
            .await?;
        let monthly = counted()
            .filter(jobs::Column::CreatedAt.gte(to_db(month_start)))
            .count(conn)
            .await?;
        let concurrent = jobs::Entity::find()
            .filter(jobs::Column::Owner.eq(owner))
            .filter(
                jobs::Column::State.is_in([JobState::Queued.as_str(), JobState::Running.as_str()]),
            )
            .count(conn)
            .await?;
        Ok(Usage {
            daily,
            monthly,
            concurrent,
        })
    }

    /// How many jobs are in each state (all owners), for the metrics.
    pub async fn count_by_state(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = jobs::Entity::find()
            .select_only()
            .column(jobs::Column::State)
            .column_as(jobs::Column::Id.count(), "n")
            .group_by(jobs::Column::State)
            .into_tuple()
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|(state, n)| {
                let parsed: JobState = state.parse().map_err(|e| corrupt("(jobs by state)", e))?;
                Ok((parsed, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    /// The W3C `traceparent` of the request that created the job, if it was traced.
    pub async fn trace_context(&self, id: &JobId) -> Result<Option<String>, StoreError> {
        let stored: Option<Option<String>> = jobs::Entity::find_by_id(id.as_str().to_owned())
            .select_only()
            .column(jobs::Column::TraceContext)
            .into_tuple()
            .one(&self.db)
            .await?;
        stored.ok_or_else(|| StoreError::NotFound(id.clone()))
    }

    /// An owner's usage: jobs created since `day_start` and since `month_start` (cancelled ones
    /// not counted) and jobs queued or running now.
    pub async fn usage(
        &self,
        owner: &str,
        day_start: DateTime<Utc>,
        month_start: DateTime<Utc>,
    ) -> Result<Usage, StoreError> {
        Self::usage_in(&self.db, owner, day_start, month_start).await
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn quota_limits_report_the_first_exhausted_allowance() {
        let limits = QuotaLimits {
            daily: 10,
            monthly: 100,
            concurrent: 2,
            day_start: DateTime::<Utc>::UNIX_EPOCH,
            month_start: DateTime::<Utc>::UNIX_EPOCH,
        };
        let usage = |daily, monthly, concurrent| Usage {
            daily,
            monthly,
            concurrent,
        };
        assert_eq!(limits.first_exceeded(&usage(9, 99, 1)), None);
        assert_eq!(
            limits.first_exceeded(&usage(10, 99, 1)),
            Some((QuotaKind::Daily, 10, 10))
        );
        assert_eq!(
            limits.first_exceeded(&usage(3, 100, 2)),
            Some((QuotaKind::Monthly, 100, 100))
        );
        assert_eq!(
            limits.first_exceeded(&usage(3, 30, 2)),
            Some((QuotaKind::Concurrent, 2, 2))
        );
    }

    #[test]
    fn urls_are_masked_and_sqlite_paths_found() {
        assert_eq!(
            masked_url("postgres://renderd:s3cret@db:5432/renderd"),
            "postgres://***@db:5432/renderd"
        );
        assert_eq!(masked_url(DEFAULT_DATABASE_URL), DEFAULT_DATABASE_URL);
        assert_eq!(
            sqlite_file_path(DEFAULT_DATABASE_URL),
            Some("./data/renderd.db")
        );
        assert_eq!(sqlite_file_path("sqlite::memory:"), None);
        assert_eq!(sqlite_file_path("sqlite:jobs.db"), Some("jobs.db"));
        assert_eq!(sqlite_file_path("postgres://x/y"), None);
    }

    #[test]
    fn times_keep_microseconds_and_leases_saturate() {
        let t = now();
        assert_eq!(t.nanosecond() % 1_000, 0);
        assert_eq!(
            lease_deadline(t, Duration::from_secs(30)) - t,
            TimeDelta::seconds(30)
        );
        assert_eq!(
            lease_deadline(t, Duration::MAX),
            truncate_to_micros(DateTime::<Utc>::MAX_UTC)
        );
    }
}
