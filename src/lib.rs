//! A self-hostable OpenAI Assistants API (v2): one binary that serves the REST API from its
//! own store, standalone or as an Azure Functions custom handler.
//!
//! # Layout
//! - `http`: warp routes, auth, request parsing, errors on the wire;
//! - `api`: the operations (one module per resource) behind the `Backend` trait;
//! - `model`: the stored records and the values they hold, below api and engine;
//! - `store`: objects with ETags, on a local directory or Azure Blob Storage;
//! - `code_interpreter`: sandboxed Python for the `code_interpreter` tool (bubblewrap
//!   locally, Azure Container Apps dynamic sessions in production);
//! - `queue`: work items, the in-process and Azure queues, and the one delivery policy of
//!   their consumers; `functions`: the Azure Functions custom-handler side (queue-trigger
//!   invocations);
//! - `engine`: advances a run by one turn per work item; `llm`, `retrieval`: the model
//!   client, and files made searchable;
//! - `webhooks`: run and vector-store events, signed and delivered through the work queue;
//! - `config`: settings from the environment;
//! - `context`: `Ctx`, what one call needs (store, queue, settings, tenant...);
//! - `app`: wiring of the above, shared by `main` and the tests; `shutdown`: background
//!   tasks owned, and the order in which the process stops; `memory`: heap given back
//!   after a burst;
//! - `ids`, `error`: time-sortable ids; the one error type;
//! - `tokens`: token counting and encoding, linear and bounded on any input.

pub mod api;
pub mod app;
pub mod code_interpreter;
pub mod config;
pub mod context;
pub mod engine;
pub mod error;
pub mod functions;
pub mod http;
pub mod ids;
pub mod llm;
pub mod memory;
pub mod model;
pub mod queue;
pub mod retrieval;
pub mod shutdown;
pub mod store;
pub mod tokens;
pub mod webhooks;
