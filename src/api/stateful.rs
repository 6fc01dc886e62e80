//! The stored backend: every operation served from the `Store`, runs advanced by the
//! `Engine` (through the work queue, or inside the request when the client streams).

use super::events::ChannelSink;
use super::{
    assistants, file_batches, files, messages, runs, threads, vector_search, vector_store_files,
    vector_stores, ApiRequest, Backend, Operation, Reply,
};
use crate::config::RunSettings;
use crate::context::Ctx;
use crate::engine::events::EventSink;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::queue::{DynQueue, Outcome, WorkItem};
use crate::retrieval::Retrieval;
use crate::store::DynStore;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub struct Stateful {
    store: DynStore,
    queue: DynQueue,
    runs: Arc<RunSettings>,
    engine: Arc<Engine>,
    retrieval: Arc<Retrieval>,
    /// Bytes of events a stream holds for a client that does not read (`SSE_BUFFER_BYTES`).
    sse_buffer_bytes: usize,
}

impl Stateful {
    pub fn new(
        store: DynStore,
        queue: DynQueue,
        runs: Arc<RunSettings>,
        engine: Arc<Engine>,
        retrieval: Arc<Retrieval>,
    ) -> Self {
        Stateful {
            store,
            queue,
            runs,
            engine,
            retrieval,
            sse_buffer_bytes: 1 << 20,
        }
    }

    /// How many bytes of events a stream may hold for a client that does not read them.
    pub fn with_sse_buffer(mut self, bytes: usize) -> Self {
        self.sse_buffer_bytes = bytes;
        self
    }

    /// Runs the run's next turns inside this request, streaming their events, until the
    /// run ends or waits for tool outputs. The turns go on (and their state is stored) even
    /// if the client goes away.
    fn stream_run(
        &self,
        ctx: &Ctx,
        record: &crate::model::run::RunRecord,
        opening: Vec<(&'static str, Value)>,
    ) -> Reply {
        let (tx, rx) =
            crate::api::events::channel(self.sse_buffer_bytes, format!("run {}", record.run.id));
        let mut sink = ChannelSink(tx);
        for (event, data) in opening {
            sink.emit(event, data);
        }
        let item = record.next_turn(&ctx.tenant);
        let engine = self.engine.clone();
        let queue = self.queue.clone();
        // Owned by the shutdown, which waits for it (it ends within the grace).
        self.engine.shutdown().spawn(async move {
            let (outcome, item) = engine.run_streamed(item, &mut sink).await;
            if let Outcome::Retry(reason) = outcome {
                // Hand the turn to the queue so the run still finishes, and tell the client.
                log::warn!(
                    "streamed turn of {} failed, queued instead: {reason}",
                    item.run_id
                );
                let queued = queue
                    .enqueue(&WorkItem::Step(item), Duration::from_millis(200))
                    .await
                    .is_ok();
                let e = ApiError::internal(reason);
                let mut body = e.to_error_object();
                if queued {
                    body["message"] = Value::String(
                        "The stream was interrupted by a server error; the run continues in \
                         the background. Poll the run for its result."
                            .into(),
                    );
                }
                let mut payload = body.clone();
                payload["error"] = body;
                sink.emit("error", payload);
            }
            // Dropping the sink ends the stream (after `done`).
        });
        Reply::Events {
            events: rx,
            headers: Vec::new(),
        }
    }
}

/// Whether the HTTP request itself runs the turn (streaming) instead of the queue.
fn queue_unless_streaming(stream: bool) -> bool {
    !stream
}

fn run_value(record: &crate::model::run::RunRecord) -> Value {
    serde_json::to_value(&record.run).unwrap_or(Value::Null)
}

#[async_trait]
impl Backend for Stateful {
    async fn handle(&self, tenant: &str, request: ApiRequest) -> Result<Reply, ApiError> {
        use Operation::*;
        let ctx = Ctx {
            store: self.store.clone(),
            queue: self.queue.clone(),
            runs: self.runs.clone(),
            retrieval: self.retrieval.clone(),
            code_interpreter: self.engine.code_interpreter().clone(),
            webhooks: self.engine.webhooks().clone(),
            tenant: tenant.to_string(),
        };
        if matches!(request.operation, Operation::CreateFile) {
            return Ok(Reply::json(files::create(&ctx, request).await?));
        }
        let body = &request.body;
        super::shapes::check(request.operation.name(), body)?;
        let query = &request.query;
        let value = match &request.operation {
            ListFiles => files::list(&ctx, query).await?,
            GetFile { file_id } => files::get(&ctx, file_id).await?,
            DeleteFile { file_id } => {
                let deleted = files::delete(&ctx, file_id).await?;
                vector_store_files::detach_everywhere(&ctx, file_id).await?;
                deleted
            }

            ListVectorStores => vector_stores::list(&ctx, query).await?,
            CreateVectorStore => vector_stores::create(&ctx, body).await?,
            GetVectorStore { vector_store_id } => vector_stores::get(&ctx, vector_store_id).await?,
            ModifyVectorStore { vector_store_id } => {
                vector_stores::modify(&ctx, vector_store_id, body).await?
            }
            DeleteVectorStore { vector_store_id } => {
                vector_stores::delete(&ctx, vector_store_id).await?
            }
            SearchVectorStore { vector_store_id } => {
                vector_search::search(&ctx, vector_store_id, body).await?
            }
            ListVectorStoreFiles { vector_store_id } => {
                vector_store_files::list_files(&ctx, vector_store_id, query).await?
            }
            CreateVectorStoreFile { vector_store_id } => {
                vector_store_files::create_file(&ctx, vector_store_id, body).await?
            }
            GetVectorStoreFile {
                vector_store_id,
                file_id,
            } => return vector_store_files::get_file(&ctx, vector_store_id, file_id).await,
            UpdateVectorStoreFile {
                vector_store_id,
                file_id,
            } => vector_store_files::update_file(&ctx, vector_store_id, file_id, body).await?,
            DeleteVectorStoreFile {
                vector_store_id,
                file_id,
            } => vector_store_files::delete_file(&ctx, vector_store_id, file_id).await?,
            GetVectorStoreFileContent {
                vector_store_id,
                file_id,
            } => vector_store_files::file_content(&ctx, vector_store_id, file_id).await?,
            CreateVectorStoreFileBatch { vector_store_id } => {
                file_batches::create_batch(&ctx, vector_store_id, body).await?
            }
            GetVectorStoreFileBatch {
                vector_store_id,
                batch_id,
            } => return file_batches::get_batch(&ctx, vector_store_id, batch_id).await,
            CancelVectorStoreFileBatch {
                vector_store_id,
                batch_id,
            } => file_batches::cancel_batch(&ctx, vector_store_id, batch_id).await?,
            ListVectorStoreFileBatchFiles {
                vector_store_id,
                batch_id,
            } => file_batches::list_batch_files(&ctx, vector_store_id, batch_id, query).await?,
            DownloadFile { file_id } => return files::content(&ctx, file_id).await,
            ListAssistants => assistants::list(&ctx, query).await?,
            CreateAssistant => assistants::create(&ctx, body).await?,
            GetAssistant { assistant_id } => assistants::get(&ctx, assistant_id).await?,
            ModifyAssistant { assistant_id } => {
                assistants::modify(&ctx, assistant_id, body).await?
            }
            DeleteAssistant { assistant_id } => assistants::delete(&ctx, assistant_id).await?,

            CreateThread => threads::create(&ctx, body).await?,
            GetThread { thread_id } => threads::get(&ctx, thread_id).await?,
            ModifyThread { thread_id } => threads::modify(&ctx, thread_id, body).await?,
            DeleteThread { thread_id } => threads::delete(&ctx, thread_id).await?,
            CreateThreadAndRun => {
                let (thread, record, stream) =
                    runs::create_thread_and_run(&ctx, body, queue_unless_streaming).await?;
                if stream {
                    let opening = vec![
                        (
                            "thread.created",
                            serde_json::to_value(&thread).unwrap_or(Value::Null),
                        ),
                        ("thread.run.created", run_value(&record)),
                        ("thread.run.queued", run_value(&record)),
                    ];
                    return Ok(self.stream_run(&ctx, &record, opening));
                }
                return runs::run_reply(&record, &ctx);
            }

            ListMessages { thread_id } => messages::list(&ctx, thread_id, query).await?,
            CreateMessage { thread_id } => messages::create(&ctx, thread_id, body).await?,
            GetMessage {
                thread_id,
                message_id,
            } => messages::get(&ctx, thread_id, message_id).await?,
            ModifyMessage {
                thread_id,
                message_id,
            } => messages::modify(&ctx, thread_id, message_id, body).await?,
            DeleteMessage {
                thread_id,
                message_id,
            } => messages::delete(&ctx, thread_id, message_id).await?,

            ListRuns { thread_id } => runs::list(&ctx, thread_id, query).await?,
            CreateRun { thread_id } => {
                let (record, stream) =
                    runs::create(&ctx, thread_id, query, body, queue_unless_streaming).await?;
                if stream {
                    let opening = vec![
                        ("thread.run.created", run_value(&record)),
                        ("thread.run.queued", run_value(&record)),
                    ];
                    return Ok(self.stream_run(&ctx, &record, opening));
                }
                return runs::run_reply(&record, &ctx);
            }
            GetRun { thread_id, run_id } => return runs::get(&ctx, thread_id, run_id).await,
            ModifyRun { thread_id, run_id } => {
                return runs::modify(&ctx, thread_id, run_id, body).await
            }
            CancelRun { thread_id, run_id } => return runs::cancel(&ctx, thread_id, run_id).await,
            SubmitToolOutputs { thread_id, run_id } => {
                let (record, stream) = runs::submit_tool_outputs(
                    &ctx,
                    thread_id,
                    run_id,
                    body,
                    queue_unless_streaming,
                )
                .await?;
                if stream {
                    let mut opening = Vec::new();
                    if let Some(round) = record.rounds.last() {
                        let step = runs::load_step(&ctx, &record, &round.step_id).await?;
                        opening.push(("thread.run.step.completed", step));
                    }
                    opening.push(("thread.run.queued", run_value(&record)));
                    return Ok(self.stream_run(&ctx, &record, opening));
                }
                return runs::run_reply(&record, &ctx);
            }
            ListRunSteps { thread_id, run_id } => {
                runs::list_steps(&ctx, thread_id, run_id, query).await?
            }
            GetRunStep {
                thread_id,
                run_id,
                step_id,
            } => runs::get_step(&ctx, thread_id, run_id, step_id, query).await?,

            other => return Err(ApiError::NotImplemented(other.name())),
        };
        Ok(Reply::json(value))
    }
}
