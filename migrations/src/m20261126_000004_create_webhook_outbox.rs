//! Signed webhooks: `jobs.callback_url`, and the `webhook_outbox` table in which every terminal
//! state change of a job with a callback leaves one event, written in the same transaction as
//! the change, for the delivery task to POST until it is accepted or its deadline passes.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Jobs::Table)
                    .add_column(text_null(Jobs::CallbackUrl))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookOutbox::Table)
                    .if_not_exists()
                    .col(string_len(WebhookOutbox::EventId, 36).primary_key())
                    .col(string_len(WebhookOutbox::JobId, 36))
                    .col(string_len(WebhookOutbox::EventType, 32))
                    .col(text(WebhookOutbox::Url))
                    .col(json_binary(WebhookOutbox::Payload))
                    .col(string_len(WebhookOutbox::State, 16))
                    .col(integer(WebhookOutbox::Attempts).default(0))
                    .col(timestamp_with_time_zone(WebhookOutbox::NextAttemptAt))
                    .col(timestamp_with_time_zone(WebhookOutbox::Deadline))
                    .col(text_null(WebhookOutbox::LastError))
                    .col(string_null(WebhookOutbox::LeaseOwner))
                    .col(timestamp_with_time_zone_null(WebhookOutbox::LeaseUntil))
                    .col(timestamp_with_time_zone(WebhookOutbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(WebhookOutbox::DeliveredAt))
                    .to_owned(),
            )
            .await?;
        // The delivery task's scan: pending events whose next attempt is due.
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_outbox_state_next_attempt_at")
                    .table(WebhookOutbox::Table)
                    .col(WebhookOutbox::State)
                    .col(WebhookOutbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        // Delivery state by job.
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_outbox_job_id")
                    .table(WebhookOutbox::Table)
                    .col(WebhookOutbox::JobId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookOutbox::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Jobs::Table)
                    .drop_column(Jobs::CallbackUrl)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    CallbackUrl,
}

#[derive(DeriveIden)]
enum WebhookOutbox {
    Table,
    EventId,
    JobId,
    EventType,
    Url,
    Payload,
    State,
    Attempts,
    NextAttemptAt,
    Deadline,
    LastError,
    LeaseOwner,
    LeaseUntil,
    CreatedAt,
    DeliveredAt,
}
