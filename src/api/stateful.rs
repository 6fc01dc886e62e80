//! The stored backend: every operation served from the `Store`, runs advanced by the
//! `Engine` (through the work queue, or inside the request when the client streams).

use super::events::ChannelSink;
use super::{
    assistants, file_batches, files, messages, path_id, responses, run_steps, runs, threads,
    tool_outputs, vector_search, vector_store_files, vector_stores, ApiRequest, Backend, Operation,
    Reply,
};
use crate::config::RunSettings;
use crate::context::Ctx;
use crate::engine::events::EventSink;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::ids::{FileId, StepId, ThreadId};
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
            done: true,
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
        // Path ids are parsed here, once, and handlers take them typed and check none. Where
        // a handler checked its query or body before its ids, that check comes first here
        // too (`check_*`, `list_query`), so a request wrong in both answers the same error.
        let value = match &request.operation {
            ListFiles => files::list(&ctx, query).await?,
            GetFile { file_id } => files::get(&ctx, &path_id(file_id)?).await?,
            DeleteFile { file_id } => {
                let file_id: FileId = path_id(file_id)?;
                let deleted = files::delete(&ctx, &file_id).await?;
                vector_store_files::detach_everywhere(&ctx, &file_id).await?;
                deleted
            }

            ListVectorStores => vector_stores::list(&ctx, query).await?,
            CreateVectorStore => vector_stores::create(&ctx, body).await?,
            GetVectorStore { vector_store_id } => {
                vector_stores::get(&ctx, &path_id(vector_store_id)?).await?
            }
            ModifyVectorStore { vector_store_id } => {
                vector_stores::modify(&ctx, &path_id(vector_store_id)?, body).await?
            }
            DeleteVectorStore { vector_store_id } => {
                vector_stores::delete(&ctx, &path_id(vector_store_id)?).await?
            }
            SearchVectorStore { vector_store_id } => {
                let search = vector_search::check(body)?;
                vector_search::search(&ctx, &path_id(vector_store_id)?, search).await?
            }
            ListVectorStoreFiles { vector_store_id } => {
                let q = vector_store_files::list_query(query)?;
                vector_store_files::list_files(&ctx, &path_id(vector_store_id)?, q).await?
            }
            CreateVectorStoreFile { vector_store_id } => {
                let new = vector_store_files::check_create_file(body)?;
                vector_store_files::create_file(&ctx, &path_id(vector_store_id)?, new).await?
            }
            GetVectorStoreFile {
                vector_store_id,
                file_id,
            } => {
                let (vs, file) = (path_id(vector_store_id)?, path_id(file_id)?);
                return vector_store_files::get_file(&ctx, &vs, &file).await;
            }
            UpdateVectorStoreFile {
                vector_store_id,
                file_id,
            } => {
                let req = vector_store_files::check_update_file(body)?;
                let (vs, file) = (path_id(vector_store_id)?, path_id(file_id)?);
                vector_store_files::update_file(&ctx, &vs, &file, req).await?
            }
            DeleteVectorStoreFile {
                vector_store_id,
                file_id,
            } => {
                let (vs, file) = (path_id(vector_store_id)?, path_id(file_id)?);
                vector_store_files::delete_file(&ctx, &vs, &file).await?
            }
            GetVectorStoreFileContent {
                vector_store_id,
                file_id,
            } => {
                let (vs, file) = (path_id(vector_store_id)?, path_id(file_id)?);
                vector_store_files::file_content(&ctx, &vs, &file).await?
            }
            CreateVectorStoreFileBatch { vector_store_id } => {
                let entries = file_batches::check_create_batch(body)?;
                file_batches::create_batch(&ctx, &path_id(vector_store_id)?, entries).await?
            }
            GetVectorStoreFileBatch {
                vector_store_id,
                batch_id,
            } => {
                let (vs, batch) = (path_id(vector_store_id)?, path_id(batch_id)?);
                return file_batches::get_batch(&ctx, &vs, &batch).await;
            }
            CancelVectorStoreFileBatch {
                vector_store_id,
                batch_id,
            } => {
                let (vs, batch) = (path_id(vector_store_id)?, path_id(batch_id)?);
                file_batches::cancel_batch(&ctx, &vs, &batch).await?
            }
            ListVectorStoreFileBatchFiles {
                vector_store_id,
                batch_id,
            } => {
                let q = vector_store_files::list_query(query)?;
                let (vs, batch) = (path_id(vector_store_id)?, path_id(batch_id)?);
                file_batches::list_batch_files(&ctx, &vs, &batch, q).await?
            }
            DownloadFile { file_id } => return files::content(&ctx, &path_id(file_id)?).await,
            ListAssistants => assistants::list(&ctx, query).await?,
            CreateAssistant => assistants::create(&ctx, body).await?,
            GetAssistant { assistant_id } => assistants::get(&ctx, &path_id(assistant_id)?).await?,
            ModifyAssistant { assistant_id } => {
                assistants::modify(&ctx, &path_id(assistant_id)?, body).await?
            }
            DeleteAssistant { assistant_id } => {
                assistants::delete(&ctx, &path_id(assistant_id)?).await?
            }

            CreateThread => threads::create(&ctx, body).await?,
            GetThread { thread_id } => threads::get(&ctx, &path_id(thread_id)?).await?,
            ModifyThread { thread_id } => threads::modify(&ctx, &path_id(thread_id)?, body).await?,
            DeleteThread { thread_id } => threads::delete(&ctx, &path_id(thread_id)?).await?,
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

            ListMessages { thread_id } => messages::list(&ctx, &path_id(thread_id)?, query).await?,
            CreateMessage { thread_id } => {
                messages::create(&ctx, &path_id(thread_id)?, body).await?
            }
            GetMessage {
                thread_id,
                message_id,
            } => {
                let (thread, message) = (path_id(thread_id)?, path_id(message_id)?);
                messages::get(&ctx, &thread, &message).await?
            }
            ModifyMessage {
                thread_id,
                message_id,
            } => {
                let (thread, message) = (path_id(thread_id)?, path_id(message_id)?);
                messages::modify(&ctx, &thread, &message, body).await?
            }
            DeleteMessage {
                thread_id,
                message_id,
            } => {
                let (thread, message) = (path_id(thread_id)?, path_id(message_id)?);
                messages::delete(&ctx, &thread, &message).await?
            }

            ListRuns { thread_id } => runs::list(&ctx, &path_id(thread_id)?, query).await?,
            CreateRun { thread_id } => {
                let thread_id: ThreadId = path_id(thread_id)?;
                let (record, stream) =
                    runs::create(&ctx, &thread_id, query, body, queue_unless_streaming).await?;
                if stream {
                    let opening = vec![
                        ("thread.run.created", run_value(&record)),
                        ("thread.run.queued", run_value(&record)),
                    ];
                    return Ok(self.stream_run(&ctx, &record, opening));
                }
                return runs::run_reply(&record, &ctx);
            }
            GetRun { thread_id, run_id } => {
                let (thread, run) = (path_id(thread_id)?, path_id(run_id)?);
                return runs::get(&ctx, &thread, &run).await;
            }
            ModifyRun { thread_id, run_id } => {
                let (thread, run) = (path_id(thread_id)?, path_id(run_id)?);
                return runs::modify(&ctx, &thread, &run, body).await;
            }
            CancelRun { thread_id, run_id } => {
                let (thread, run) = (path_id(thread_id)?, path_id(run_id)?);
                return runs::cancel(&ctx, &thread, &run).await;
            }
            SubmitToolOutputs { thread_id, run_id } => {
                let (thread, run) = (path_id(thread_id)?, path_id(run_id)?);
                let (record, stream) =
                    tool_outputs::submit(&ctx, &thread, &run, body, queue_unless_streaming).await?;
                if stream {
                    let mut opening = Vec::new();
                    if let Some(round) = record.rounds.last() {
                        let step = run_steps::load_step(&ctx, &record, &round.step_id).await?;
                        opening.push(("thread.run.step.completed", step));
                    }
                    opening.push(("thread.run.queued", run_value(&record)));
                    return Ok(self.stream_run(&ctx, &record, opening));
                }
                return runs::run_reply(&record, &ctx);
            }
            ListRunSteps { thread_id, run_id } => {
                let q = run_steps::list_query(query)?;
                let (thread, run) = (path_id(thread_id)?, path_id(run_id)?);
                run_steps::list(&ctx, &thread, &run, q).await?
            }
            GetRunStep {
                thread_id,
                run_id,
                step_id,
            } => {
                let include = run_steps::check_include(query)?;
                let step: StepId = path_id(step_id)?;
                let (thread, run) = (path_id(thread_id)?, path_id(run_id)?);
                run_steps::get(&ctx, &thread, &run, &step, include).await?
            }

            CreateResponse => {
                let created = responses::create(&ctx, query, body).await?;
                let record = &created.record;
                let background = record.response.as_ref().is_some_and(|f| f.background);
                if created.stream {
                    return Ok(responses::run_streamed(
                        &self.engine,
                        &ctx,
                        record,
                        self.sse_buffer_bytes,
                    ));
                }
                if background {
                    crate::model::response::object(record, &[]).unwrap_or_default()
                } else {
                    responses::run_foreground(&self.engine, &ctx, record).await?
                }
            }
            GetResponse { response_id } => {
                if super::pagination::query_value(query, "stream") == Some("true") {
                    let buffer = self.sse_buffer_bytes;
                    return responses::get_stream(&self.engine, &ctx, response_id, query, buffer)
                        .await;
                }
                responses::get(&ctx, response_id, query).await?
            }
            CountInputTokens => responses::count_input_tokens(&ctx, body).await?,
            DeleteResponse { response_id } => responses::delete(&ctx, response_id).await?,
            CancelResponse { response_id } => responses::cancel(&ctx, response_id).await?,
            ListInputItems { response_id } => {
                responses::input_items(&ctx, response_id, query).await?
            }

            other => return Err(ApiError::NotImplemented(other.name())),
        };
        Ok(Reply::json(value))
    }
}
