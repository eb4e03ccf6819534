//! The `jobs` table: one row per render job, its live status, lease and outcome.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .if_not_exists()
                    .col(string_len(Jobs::Id, 36).primary_key())
                    .col(string(Jobs::Owner))
                    .col(string_null(Jobs::RequestId))
                    .col(text(Jobs::VideoUrl))
                    .col(string_null(Jobs::VideoName))
                    .col(text(Jobs::ScenarioJson))
                    .col(json_binary(Jobs::Options))
                    .col(string_len(Jobs::State, 16))
                    .col(string_len_null(Jobs::Stage, 16))
                    .col(double(Jobs::Progress).default(0.0))
                    .col(big_integer(Jobs::FramesDone).default(0))
                    .col(big_integer_null(Jobs::FramesTotal))
                    .col(double_null(Jobs::Fps))
                    .col(double_null(Jobs::EtaSeconds))
                    .col(string_len_null(Jobs::Encoder, 16))
                    .col(timestamp_with_time_zone(Jobs::CreatedAt))
                    .col(timestamp_with_time_zone_null(Jobs::StartedAt))
                    .col(timestamp_with_time_zone_null(Jobs::FinishedAt))
                    .col(string_null(Jobs::ErrorCode))
                    .col(text_null(Jobs::ErrorMessage))
                    .col(text_null(Jobs::OutputPath))
                    .col(big_integer_null(Jobs::OutputSize))
                    .col(double_null(Jobs::OutputDuration))
                    .col(string_null(Jobs::LeaseOwner))
                    .col(timestamp_with_time_zone_null(Jobs::LeaseExpiresAt))
                    .col(integer(Jobs::Attempts).default(0))
                    .to_owned(),
            )
            .await?;
        // AIP-155: one job per (owner, request_id); rows without a request id never collide
        // because NULLs are distinct in unique indexes on both SQLite and PostgreSQL.
        manager
            .create_index(
                Index::create()
                    .name("idx_jobs_owner_request_id")
                    .table(Jobs::Table)
                    .col(Jobs::Owner)
                    .col(Jobs::RequestId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // History pages: an owner's jobs newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_jobs_owner_created_at")
                    .table(Jobs::Table)
                    .col(Jobs::Owner)
                    .col(Jobs::CreatedAt)
                    .to_owned(),
            )
            .await?;
        // Claiming: queued jobs and running jobs whose lease ran out.
        manager
            .create_index(
                Index::create()
                    .name("idx_jobs_state_lease_expires_at")
                    .table(Jobs::Table)
                    .col(Jobs::State)
                    .col(Jobs::LeaseExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Jobs::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Owner,
    RequestId,
    VideoUrl,
    VideoName,
    ScenarioJson,
    Options,
    State,
    Stage,
    Progress,
    FramesDone,
    FramesTotal,
    Fps,
    EtaSeconds,
    Encoder,
    CreatedAt,
    StartedAt,
    FinishedAt,
    ErrorCode,
    ErrorMessage,
    OutputPath,
    OutputSize,
    OutputDuration,
    LeaseOwner,
    LeaseExpiresAt,
    Attempts,
}
