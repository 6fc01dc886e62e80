//! Webhooks: run and vector-store events pushed to each tenant's endpoint, signed as
//! OpenAI signs them (Standard Webhooks; `client.webhooks.unwrap` of the official SDKs
//! verifies them), delivered at least once through the `work` queue.
//!
//! - `event`: the envelope, the event types, and event ids derived from the change;
//! - `signing`: the `webhook-*` headers;
//! - `delivery`: one attempt (a `WorkItem::Webhook`), its retry schedule and the dead
//!   letters.
//!
//! An event is queued only once its state change is stored, by the code that stored it,
//! while it processes a queue item (or answers the request that made the change): if the
//! process dies between the write and the queueing, the item comes again, finds the change
//! stored and queues the event then. Every report of one change carries one event id (and
//! so one `webhook-id`), and a marker stored after the event is queued (under the thread or
//! the vector store, deleted with it) keeps later reports (a streamed turn's watchdog, a
//! redelivered item) from queueing it again: an event may still be delivered twice, never
//! lost.
//!
//! Below the engine, beside retrieval: it names model, store, queue and the context.

pub mod delivery;
pub mod event;
pub mod signing;

use crate::config::WebhookSettings;
use crate::context::Ctx;
use crate::model::run::RunRecord;
use crate::model::vector_store::{FileBatchRecord, VectorStoreFileRecord, VectorStoreFileStatus};
use crate::queue::{WebhookPost, WorkItem};
use crate::store::{self, keys, PutMode, StoreError, Update};
use event::Event;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The webhooks of a process: the settings, the client that posts, and counts for the log.
pub struct Webhooks {
    pub settings: WebhookSettings,
    client: reqwest::Client,
    counts: Counts,
}

/// What this process did with events (for the log line of `delivery`).
#[derive(Default)]
struct Counts {
    queued: AtomicU64,
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    /// Events whose last attempt here failed and whose next one is scheduled.
    awaiting_retry: AtomicU64,
    dead: AtomicU64,
}

impl Webhooks {
    pub fn new(settings: WebhookSettings) -> Result<Webhooks, String> {
        let client = reqwest::Client::builder()
            // Any 3xx is a failed attempt, as on OpenAI: the endpoint is the one configured.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .user_agent(concat!(
                "assistants-service/",
                env!("CARGO_PKG_VERSION"),
                " webhooks"
            ))
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(Webhooks {
            settings,
            client,
            counts: Counts::default(),
        })
    }

    /// None configured: no event is ever queued.
    pub fn disabled() -> Webhooks {
        Webhooks {
            settings: WebhookSettings::default(),
            client: reqwest::Client::new(),
            counts: Counts::default(),
        }
    }

    /// Logs, once at start-up, the endpoints whose host is a loopback, private or
    /// link-local address (fine for a receiver beside the service; a mistake otherwise).
    pub fn warn_about_private_endpoints(&self) {
        let endpoints = self
            .settings
            .default
            .iter()
            .map(|e| ("WEBHOOK_URL".to_string(), e))
            .chain(
                self.settings
                    .tenants
                    .iter()
                    .map(|(t, e)| (format!("WEBHOOK_TENANT_URLS ({t})"), e)),
            );
        for (setting, endpoint) in endpoints {
            if let Some(host) = private_host(&endpoint.url) {
                log::warn!(
                    "{setting} points at {host}, a loopback or private address: events go to \
                     this machine or its private network"
                );
            }
        }
    }

    /// The log line of the counts (pending = awaiting a retry here).
    fn log_counts(&self) {
        let c = &self.counts;
        log::info!(
            "webhooks (this instance): {} queued, {} delivered, {} pending retry, {} failed \
             attempts, {} dead-lettered",
            c.queued.load(Ordering::Relaxed),
            c.delivered.load(Ordering::Relaxed),
            c.awaiting_retry.load(Ordering::Relaxed),
            c.failed_attempts.load(Ordering::Relaxed),
            c.dead.load(Ordering::Relaxed),
        );
    }
}

/// The host of an http(s) URL if it is a loopback, private, link-local or unspecified
/// address (or `localhost`).
fn private_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    let private = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || ip
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_private() || v4.is_link_local())
        }
        Err(_) => {
            let name = host.to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    private.then(|| host.to_string())
}

/// Queues the event of a run's stored status, if it has one and the tenant takes it. Call
/// it after the write that stored the status, and wherever a work item finds its run at a
/// status its own turn stored (the report that a crash may have lost). `Err`: the event
/// could not be queued; the caller's item must be retried.
pub async fn run_changed(ctx: &Ctx, record: &RunRecord) -> Result<(), String> {
    let Some(event) = event::run_event(&ctx.tenant, record) else {
        return Ok(());
    };
    let marker = keys::run_webhook(&ctx.tenant, &record.run.thread_id, &event.id);
    emit(ctx, &marker, event).await
}

/// Queues the event of a vector-store file that ended (`completed`, `failed`), and that of
/// its batch when it was the batch's last file in progress.
pub async fn file_changed(ctx: &Ctx, record: &VectorStoreFileRecord) -> Result<(), String> {
    let vs_id = &record.file.vector_store_id;
    if let Some(event) = event::file_event(
        &ctx.tenant,
        vs_id,
        (&record.file.id, record.file.created_at),
        record.file.status,
        crate::model::now(),
    ) {
        let marker = keys::vector_store_webhook(&ctx.tenant, vs_id, &event.id);
        emit(ctx, &marker, event).await?;
    }
    // The batch's open files are kept with webhooks off too, so that turning them on
    // while a batch runs still reports its end.
    if let Some(batch_id) = &record.batch_id {
        batch_changed(ctx, vs_id, batch_id, (&record.file.id, record.file.status)).await?;
    }
    Ok(())
}

/// A file of a batch detached before it ended: it leaves the batch's open files, and the
/// batch's event is queued if that was the last.
pub async fn batch_file_detached(ctx: &Ctx, record: &VectorStoreFileRecord) -> Result<(), String> {
    match &record.batch_id {
        Some(batch_id) if record.file.status == VectorStoreFileStatus::InProgress => {
            let file = (record.file.id.as_str(), VectorStoreFileStatus::InProgress);
            batch_changed(ctx, &record.file.vector_store_id, batch_id, file).await
        }
        _ => Ok(()),
    }
}

/// The file `file_id` of batch `batch_id` ended `status`: it leaves the batch's open
/// files (one conditional update of the batch, whatever its size), and the file that
/// leaves none queues the batch's event. A file counted already (a redelivered item) finds
/// the batch as it is and queues its event if it has ended (its marker keeps that to once).
async fn batch_changed(
    ctx: &Ctx,
    vs_id: &str,
    batch_id: &str,
    (file_id, status): (&str, VectorStoreFileStatus),
) -> Result<(), String> {
    let batch_key = keys::vector_store_batch(&ctx.tenant, vs_id, batch_id);
    let batch = store::update_json(ctx.store.as_ref(), &batch_key, |mut b: FileBatchRecord| {
        if b.file_ended(file_id, status) {
            Ok::<_, StoreError>(Update::Write(b.clone(), b))
        } else {
            Ok(Update::Keep(b))
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    let Some(ended) = batch.as_ref().and_then(FileBatchRecord::ended) else {
        return Ok(());
    };
    let Some(event) = event::batch_event(&ctx.tenant, vs_id, batch_id, ended, crate::model::now())
    else {
        return Ok(());
    };
    let marker = keys::vector_store_webhook(&ctx.tenant, vs_id, &event.id);
    emit(ctx, &marker, event).await
}

/// Whether `status` is an end a file event reports.
pub fn file_has_event(status: VectorStoreFileStatus) -> bool {
    matches!(
        status,
        VectorStoreFileStatus::Completed | VectorStoreFileStatus::Failed
    )
}

/// Queues `event` for the tenant's endpoint unless its marker says it was queued already,
/// then stores the marker (a crash between the two queues it twice, never never).
async fn emit(ctx: &Ctx, marker: &str, event: Event) -> Result<(), String> {
    let Some(endpoint) = ctx.webhooks.settings.endpoint(&ctx.tenant) else {
        return Ok(());
    };
    if !endpoint.wants(event.kind) {
        return Ok(());
    }
    match ctx.store.get(marker).await {
        Ok(Some(_)) => return Ok(()),
        Ok(None) => {}
        // Unknown: queue it (a duplicate is allowed, a loss is not).
        Err(e) => log::debug!("cannot read webhook marker {marker}: {e}"),
    }
    let body = serde_json::to_string(&event).map_err(|e| e.to_string())?;
    let post = WebhookPost {
        tenant: ctx.tenant.clone(),
        event_id: event.id.clone(),
        event_type: event.kind.to_string(),
        created_at: event.created_at,
        body,
        attempt: 1,
    };
    ctx.queue
        .enqueue(&WorkItem::Webhook(post), Duration::ZERO)
        .await
        .map_err(|e| format!("cannot queue webhook event {}: {e}", event.id))?;
    ctx.webhooks.counts.queued.fetch_add(1, Ordering::Relaxed);
    log::debug!("webhook event {} {} queued", event.kind, event.id);
    // The event as queued (a stored document like any other, with its schema version).
    match store::put_json(ctx.store.as_ref(), marker, &event, PutMode::Create).await {
        Ok(_) | Err(StoreError::Conflict) => {}
        Err(e) => log::debug!("cannot store webhook marker {marker}: {e}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_hosts_are_recognised() {
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://localhost/x",
            "https://10.1.2.3/",
            "http://192.168.0.4:80",
            "http://[::1]:8080/",
            "http://user@172.16.0.1/",
            "http://169.254.169.254/latest",
            "http://[fd00::1]/",
        ] {
            assert!(private_host(url).is_some(), "{url}");
        }
        for url in [
            "https://example.com/hook",
            "https://8.8.8.8/",
            "http://[2001:db8::1]/",
        ] {
            assert!(private_host(url).is_none(), "{url}");
        }
    }
}
