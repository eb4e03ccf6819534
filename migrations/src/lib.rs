//! renderd's database schema, as sea-orm migrations. Each migration names its tables and
//! columns through its own `DeriveIden` enums and never imports the application's entities,
//! so old migrations keep compiling however the entities change.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_jobs;
mod m20261126_000002_add_jobs_updated_at;
mod m20261126_000003_add_output_expiry;
mod m20261126_000004_create_webhook_outbox;
mod m20261126_000005_add_jobs_trace_context;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_jobs::Migration),
            Box::new(m20261126_000002_add_jobs_updated_at::Migration),
            Box::new(m20261126_000003_add_output_expiry::Migration),
            Box::new(m20261126_000004_create_webhook_outbox::Migration),
            Box::new(m20261126_000005_add_jobs_trace_context::Migration),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm_migration::sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

    /// Rolls back every migration from the newest down to and including `name`, so a test of
    /// one migration's `down` holds whatever migrations come after it.
    async fn down_through(db: &DatabaseConnection, name: &str) {
        let migrations = Migrator::migrations();
        let position = migrations
            .iter()
            .position(|m| m.name() == name)
            .expect("a known migration");
        let steps = <u32 as std::convert::TryFrom<usize>>::try_from(migrations.len() - position)
            .expect("few migrations");
        Migrator::down(db, Some(steps)).await.expect("down");
    }

    async fn table_exists(db: &DatabaseConnection, table: &str) -> bool {
        let backend = db.get_database_backend();
        let sql = match backend {
            sea_orm_migration::sea_orm::DbBackend::Postgres => {
                "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name = $1"
            }
            _ => "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
        };
        let row = db
            .query_one_raw(Statement::from_sql_and_values(backend, sql, [table.into()]))
            .await
            .expect("query the catalogue")
            .expect("COUNT returns a row");
        row.try_get::<i64>("", "n").expect("count column") > 0
    }

    async fn index_names(db: &DatabaseConnection) -> Vec<String> {
        let backend = db.get_database_backend();
        let sql = match backend {
            sea_orm_migration::sea_orm::DbBackend::Postgres => {
                "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'jobs' ORDER BY indexname"
            }
            _ => "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        };
        db.query_all_raw(Statement::from_string(backend, sql))
            .await
            .expect("list indexes")
            .into_iter()
            .map(|row| row.try_get::<String>("", "name").expect("index name"))
            .collect()
    }

    async fn round_trip(db: &DatabaseConnection) {
        Migrator::up(db, None).await.expect("first up");
        assert!(table_exists(db, "jobs").await);
        assert!(table_exists(db, "webhook_outbox").await);
        let indexes = index_names(db).await;
        for wanted in [
            "idx_jobs_owner_created_at",
            "idx_jobs_owner_request_id",
            "idx_jobs_state_lease_expires_at",
            "idx_jobs_output_expires_at",
        ] {
            assert!(
                indexes.iter().any(|name| name == wanted),
                "{wanted} missing from {indexes:?}"
            );
        }
        Migrator::down(db, None).await.expect("down");
        assert!(!table_exists(db, "jobs").await);
        assert!(!table_exists(db, "webhook_outbox").await);
        Migrator::up(db, None).await.expect("second up");
        assert!(table_exists(db, "jobs").await);
        assert_eq!(
            Migrator::get_pending_migrations(db)
                .await
                .expect("pending")
                .len(),
            0
        );
    }

    #[tokio::test]
    async fn updated_at_is_backfilled_for_existing_rows() {
        let db = Database::connect("sqlite::memory:")
            .await
            .expect("open in-memory SQLite");
        Migrator::up(&db, Some(1))
            .await
            .expect("the first migration");
        db.execute_unprepared(
            "INSERT INTO jobs (id, owner, video_url, scenario_json, options, state, created_at, \
             started_at) VALUES ('j1', 'alice', 'file:///a.mp4', '{}', '{}', 'running', \
             '2026-11-01 10:00:00+00:00', '2026-11-01 10:00:05+00:00')",
        )
        .await
        .expect("a row written before updated_at existed");
        Migrator::up(&db, None).await.expect("the rest");
        let backend = db.get_database_backend();
        let row = db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT updated_at FROM jobs WHERE id = 'j1'",
            ))
            .await
            .expect("select")
            .expect("the row");
        let updated: String = row.try_get("", "updated_at").expect("updated_at");
        assert!(updated.starts_with("2026-11-01 10:00:05"), "{updated}");
    }

    #[tokio::test]
    async fn trace_context_column_comes_and_goes() {
        let db = Database::connect("sqlite::memory:")
            .await
            .expect("open in-memory SQLite");
        Migrator::up(&db, None).await.expect("up");
        let insert = "INSERT INTO jobs (id, owner, video_url, scenario_json, options, state, \
             created_at, trace_context) VALUES ('j1', 'alice', 'file:///a.mp4', '{}', '{}', \
             'queued', '2026-11-01 10:00:00+00:00', \
             '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')";
        db.execute_unprepared(insert)
            .await
            .expect("a row with a trace context");
        let backend = db.get_database_backend();
        let row = db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT trace_context FROM jobs WHERE id = 'j1'",
            ))
            .await
            .expect("select")
            .expect("the row");
        let stored: Option<String> = row.try_get("", "trace_context").expect("column");
        assert_eq!(
            stored.as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        down_through(&db, "m20261126_000005_add_jobs_trace_context").await;
        let select = db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT trace_context FROM jobs WHERE id = 'j1'",
            ))
            .await;
        assert!(select.is_err(), "the column is gone after down");
        Migrator::up(&db, None).await.expect("up again");
    }

    #[tokio::test]
    async fn webhook_outbox_is_indexed_for_the_delivery_scan_and_down_drops_the_callback() {
        let db = Database::connect("sqlite::memory:")
            .await
            .expect("open in-memory SQLite");
        Migrator::up(&db, None).await.expect("up");
        let backend = db.get_database_backend();
        let names: Vec<String> = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'webhook_outbox' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY name",
            ))
            .await
            .expect("list indexes")
            .into_iter()
            .map(|row| row.try_get::<String>("", "name").expect("index name"))
            .collect();
        assert_eq!(
            names,
            [
                "idx_webhook_outbox_job_id",
                "idx_webhook_outbox_state_next_attempt_at"
            ]
        );
        let has_callback = |db: DatabaseConnection| async move {
            let row = db
                .query_one_raw(Statement::from_string(
                    backend,
                    "SELECT COUNT(*) AS n FROM pragma_table_info('jobs') WHERE name = 'callback_url'",
                ))
                .await
                .expect("table info")
                .expect("COUNT returns a row");
            row.try_get::<i64>("", "n").expect("count") == 1
        };
        assert!(has_callback(db.clone()).await);
        down_through(&db, "m20261126_000004_create_webhook_outbox").await;
        assert!(!has_callback(db.clone()).await);
        assert!(!table_exists(&db, "webhook_outbox").await);
        assert!(table_exists(&db, "jobs").await);
    }

    #[tokio::test]
    async fn up_down_up_on_sqlite() {
        let db = Database::connect("sqlite::memory:")
            .await
            .expect("open in-memory SQLite");
        round_trip(&db).await;
    }

    #[tokio::test]
    async fn up_down_up_on_postgres() {
        let Ok(url) = std::env::var("DATABASE_URL") else {
            eprintln!("skipping the PostgreSQL migration round trip: DATABASE_URL is not set");
            return;
        };
        let db = Database::connect(&url)
            .await
            .expect("connect to DATABASE_URL");
        // Start from nothing so the test is repeatable on a shared server.
        Migrator::reset(&db).await.expect("reset");
        round_trip(&db).await;
    }
}
