//! The `code_interpreter` tool inside runs: offered to the model as a function taking the
//! code (`code_interpreter::prompt`), run by the engine in the thread's own Python session
//! (never `requires_action`), recorded as a `code_interpreter` tool call with its `input`
//! and `outputs`.
//!
//! Files in: the assistant's and the thread's `code_interpreter` files (message attachments
//! join the thread's) are uploaded into `/mnt/data` before the run's first cell, under their
//! file names, which the model is told with the run's instructions. A session that is new
//! gets all of them; one that exists gets those it lacks. Files out: figures and files a
//! cell wrote become `assistants_output` files with ids derived from the call, so a repeated
//! turn overwrites them; figures are the step's `image` outputs and the answer's
//! `image_file` parts, written files become `file_path` annotations where the answer names
//! them as `sandbox:/mnt/data/...`.

use crate::code_interpreter::prompt::{
    code_from_arguments, model_error, model_output, step_logs, tool_name, MODEL_OUTPUT_CHARS,
    STEP_LOG_CHARS,
};
use crate::code_interpreter::{
    check_upload_name, CellOutput, CodeExecutor, CodeInterpreter, ExecError, FileInfo, SessionId,
    SessionOpen,
};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::{derived_id, Kind};
use crate::model::run::{OutputFile, RoundCall, RunRecord, ServerCall, MAX_ATTEMPTS};
use crate::model::values::Tool;
use crate::model::{assistant, file};
use crate::store::{self, keys};
use serde_json::{json, Value};
use std::collections::HashSet;

/// The function name the model sees for `code_interpreter`, if the run has the tool (one
/// no function of the run uses).
pub fn function_name(record: &RunRecord) -> Option<&'static str> {
    let tools = &record.run.tools;
    if !tools.iter().any(|t| matches!(t, Tool::CodeInterpreter {})) {
        return None;
    }
    let functions: Vec<&str> = tools
        .iter()
        .filter_map(|t| match t {
            Tool::Function { function } => Some(function.name.as_str()),
            _ => None,
        })
        .collect();
    Some(tool_name(functions.iter().copied()))
}

/// A user file the run's sessions get in `/mnt/data`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputFile {
    pub file_id: String,
    /// The name in `/mnt/data`: the file's name, or `<file id>-<name>` when two files share
    /// a name or the name is not a valid one there.
    pub name: String,
    pub bytes: u64,
}

/// What a turn of a run with the tool needs: the executor and the run's files.
pub struct CodeTurn<'a> {
    pub ci: &'a CodeInterpreter,
    pub executor: &'a dyn CodeExecutor,
    pub name: &'static str,
    pub files: Vec<InputFile>,
}

/// The tool as the turn's prompt offers it: its function and what the instructions add.
pub fn prompt_tool(turn: &CodeTurn<'_>) -> super::prompt::CodeTool {
    super::prompt::CodeTool {
        name: turn.name,
        definition: crate::code_interpreter::prompt::tool_definition(
            turn.name,
            turn.ci.cell_timeout(),
            turn.executor.kind(),
        ),
        instructions: instructions(&turn.files),
    }
}

/// The run's input files: the assistant's, then the thread's (files deleted since are
/// left out).
pub async fn input_files(ctx: &Ctx, record: &RunRecord) -> Result<Vec<InputFile>, ApiError> {
    let mut ids: Vec<String> = Vec::new();
    let (store, tenant) = (ctx.store.as_ref(), ctx.tenant.as_str());
    if let Some(face) = &record.response {
        // A response names its container's files in its request.
        ids.extend(face.container_file_ids.iter().cloned());
    } else {
        // A deleted assistant leaves the thread's files.
        if let Some(a) = assistant::load(store, tenant, &record.run.assistant_id).await? {
            if let Some(ci) = a.tool_resources.code_interpreter {
                ids.extend(ci.file_ids);
            }
        }
        let thread = super::load_thread(ctx, &record.run.thread_id).await?;
        if let Some(ci) = thread.thread.tool_resources.code_interpreter {
            ids.extend(ci.file_ids);
        }
    }
    let mut seen_ids = HashSet::new();
    let mut found = Vec::new();
    for id in ids {
        if !seen_ids.insert(id.clone()) {
            continue;
        }
        if let Some(f) = file::load(store, tenant, &id).await? {
            found.push((id, f.file.filename, f.file.bytes));
        }
    }
    Ok(mount_names(found))
}

/// Names in `/mnt/data` for `(file id, file name, bytes)`: the file name where it is valid
/// and unique, otherwise prefixed with the file id.
fn mount_names(files: Vec<(String, String, u64)>) -> Vec<InputFile> {
    let mut count = std::collections::HashMap::<&str, usize>::new();
    for (_, name, _) in &files {
        *count.entry(name.as_str()).or_default() += 1;
    }
    let unique: HashSet<String> = count
        .into_iter()
        .filter(|(name, n)| *n == 1 && check_upload_name(name).is_ok())
        .map(|(name, _)| name.to_string())
        .collect();
    files
        .into_iter()
        .map(|(file_id, name, bytes)| {
            let name = if unique.contains(&name) {
                name
            } else {
                let cleaned: String = name
                    .chars()
                    .map(|c| {
                        if c == '/' || c == '\\' || c.is_control() {
                            '_'
                        } else {
                            c
                        }
                    })
                    .take(200)
                    .collect();
                format!("{file_id}-{cleaned}")
            };
            InputFile {
                file_id,
                name,
                bytes,
            }
        })
        .collect()
}

/// What the run's instructions add about the files (nothing when there are none).
pub fn instructions(files: &[InputFile]) -> Option<String> {
    if files.is_empty() {
        return None;
    }
    let list: Vec<String> = files
        .iter()
        .map(|f| format!("- /mnt/data/{} ({} bytes)", f.name, f.bytes))
        .collect();
    Some(format!(
        "The user's files are available to the Python tool in /mnt/data:\n{}",
        list.join("\n")
    ))
}

/// Whether the run ran code before this turn (a session it finds new was then restarted).
fn ran_code_before(record: &RunRecord) -> bool {
    record
        .rounds
        .iter()
        .flat_map(|r| &r.calls)
        .any(|c| matches!(c.server, Some(ServerCall::CodeInterpreter { .. })))
}

/// How many of the thread's latest other runs `thread_ran_code` looks at.
const RUNS_LOOKED_BACK: usize = 20;

/// Whether an earlier run of the thread ran code, so that a session found new on this
/// run's first call was lost since (expired, killed, or the server restarted) and the model
/// must hear that its variables are gone. Only asked when a session had to be created.
async fn thread_ran_code(ctx: &Ctx, record: &RunRecord) -> Result<bool, ApiError> {
    let prefix = keys::runs(&ctx.tenant, &record.run.thread_id);
    let mut run_keys = store::list_all(ctx.store.as_ref(), &prefix).await?;
    // Ids sort by creation time: the newest first.
    run_keys.sort_unstable();
    let earlier = run_keys
        .iter()
        .rev()
        .filter(|k| keys::last_segment(k) != record.run.id)
        .take(RUNS_LOOKED_BACK);
    for key in earlier {
        if let Some((run, _)) = store::get_json::<RunRecord>(ctx.store.as_ref(), key).await? {
            if ran_code_before(&run) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The files the run's cells wrote so far, and the figures not yet shown in a message:
/// those of the rounds from the last one whose turn wrote a message (its calls ran after
/// that message) on.
pub fn outputs_so_far(record: &RunRecord) -> (Vec<OutputFile>, Vec<String>) {
    let mut written = Vec::new();
    let mut images = Vec::new();
    for round in &record.rounds {
        if round.text.is_some() {
            images.clear();
        }
        for call in &round.calls {
            if let Some(ServerCall::CodeInterpreter { outputs, files, .. }) = &call.server {
                written.extend(files.iter().cloned());
                images.extend(
                    outputs
                        .iter()
                        .filter_map(|o| o["image"]["file_id"].as_str().map(str::to_string)),
                );
            }
        }
    }
    (written, images)
}

/// Why a call could not go on: the run fails with this (the executor cannot be used).
pub struct Fatal(pub String);

/// Outcome of one call: the round call, and the store keys of the files it wrote.
pub struct Ran {
    pub call: RoundCall,
    pub written: Vec<String>,
}

/// One call of the model to run: its id, its arguments, whether it is the turn's first
/// call of the tool, and its number (`call_number`, for the ids of the files it writes).
pub struct CallToRun<'a> {
    pub id: String,
    pub arguments: &'a str,
    pub first_of_turn: bool,
    pub number: u32,
}

/// Runs one call: opens the thread's session (uploading the run's files into a new one,
/// or those missing from an existing one on the run's first call), runs the cell, stores
/// its figures and files. A cell that raises or times out is a normal result the model
/// reads; a lost session is opened again and the cell re-run once, with the model told (also
/// when it was lost between runs: an earlier run of the thread ran code).
pub async fn run_call(
    ctx: &Ctx,
    turn: &CodeTurn<'_>,
    record: &RunRecord,
    call: CallToRun<'_>,
) -> Result<Result<Ran, Fatal>, ApiError> {
    let code = code_from_arguments(call.arguments);
    let session = turn.ci.session_id(&ctx.tenant, &record.run.thread_id);
    let cell = match run_cell(ctx, turn, record, &session, &code, call.first_of_turn).await? {
        Ok(cell) => cell,
        Err(e) => return Ok(exec_failure(e, &code, call.id, call.arguments, turn)),
    };
    let stored = store_outputs(ctx, turn, record, &session, &cell.output, call.number).await?;
    let text = model_text(&cell, &stored);
    let mut outputs = Vec::new();
    let logs = step_logs(&cell.output, STEP_LOG_CHARS);
    if !logs.is_empty() {
        outputs.push(json!({"type": "logs", "logs": logs}));
    }
    for file_id in &stored.images {
        outputs.push(json!({"type": "image", "image": {"file_id": file_id}}));
    }
    Ok(Ok(Ran {
        call: RoundCall {
            id: call.id,
            name: turn.name.to_string(),
            arguments: call.arguments.to_string(),
            output: Some(text),
            server: Some(ServerCall::CodeInterpreter {
                input: code,
                outputs,
                files: stored.files,
            }),
        },
        written: stored.keys,
    }))
}

/// A cell as it ran, with what the model is told besides its output.
struct RanCell {
    output: CellOutput,
    /// The session had to be started again (the model's variables are gone).
    restarted: bool,
    /// Notes about files that could not be provided.
    notes: Vec<String>,
}

/// Opens the session (with the files it needs) and runs the cell, once more in a new
/// session if the first is lost.
async fn run_cell(
    ctx: &Ctx,
    turn: &CodeTurn<'_>,
    record: &RunRecord,
    session: &SessionId,
    code: &str,
    first_call_of_turn: bool,
) -> Result<Result<RanCell, ExecError>, ApiError> {
    let used_before = ran_code_before(record) || !first_call_of_turn;
    let mut notes: Vec<String> = Vec::new();
    let mut restarted = false;
    for attempt in 0..2 {
        let opened = match turn.executor.open_session(session).await {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        if opened == SessionOpen::Created
            && (used_before || attempt > 0 || thread_ran_code(ctx, record).await?)
        {
            restarted = true;
        }
        let sync_all = opened == SessionOpen::Created;
        if sync_all || (attempt == 0 && !ran_code_before(record) && first_call_of_turn) {
            match upload_files(ctx, turn, session, sync_all).await {
                Ok(n) => notes.extend(n),
                Err(ExecError::SessionLost(_)) if attempt == 0 => continue,
                Err(e) => return Ok(Err(e)),
            }
        }
        match turn
            .executor
            .execute(session, code, turn.ci.cell_timeout())
            .await
        {
            Ok(output) => {
                return Ok(Ok(RanCell {
                    output,
                    restarted,
                    notes,
                }))
            }
            Err(ExecError::SessionLost(_)) if attempt == 0 => restarted = true,
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Err(ExecError::SessionLost(
        "it ended twice in a row".into(),
    )))
}

/// What the model reads of a cell: its output (the files it wrote that were not kept are
/// named as such, in place of "saved"), after the notes.
fn model_text(cell: &RanCell, stored: &Stored) -> String {
    let mut shown = cell.output.clone();
    shown
        .files
        .retain(|f| !stored.left_out.iter().any(|(p, _)| *p == f.path));
    shown.images.truncate(stored.images.len());
    let mut text = model_output(&shown, cell.restarted, MODEL_OUTPUT_CHARS);
    for (path, why) in &stored.left_out {
        text.push_str(&format!("\n[not saved: sandbox:/mnt/data/{path} ({why})]"));
    }
    if stored.images_left_out > 0 {
        text.push_str(&format!(
            "\n[{} figures not shown: over what a cell may save]",
            stored.images_left_out
        ));
    }
    if !cell.notes.is_empty() {
        text = format!("{}\n\n{text}", cell.notes.join("\n"));
    }
    text
}

/// An executor fault: the model reads what happened and the step shows it as logs; faults
/// that no retry or code can fix (credentials, a backend that went away) fail the run.
fn exec_failure(
    e: ExecError,
    code: &str,
    id: String,
    arguments: &str,
    turn: &CodeTurn<'_>,
) -> Result<Ran, Fatal> {
    if matches!(e, ExecError::Auth(_) | ExecError::Unavailable(_)) {
        log::error!("code_interpreter ({}): {e}", turn.executor.kind());
        return Err(Fatal(format!("The code interpreter failed: {e}")));
    }
    log::warn!("code_interpreter ({}): {e}", turn.executor.kind());
    let text = model_error(&e);
    Ok(Ran {
        call: RoundCall {
            id,
            name: turn.name.to_string(),
            arguments: arguments.to_string(),
            output: Some(text.clone()),
            server: Some(ServerCall::CodeInterpreter {
                input: code.to_string(),
                outputs: vec![json!({"type": "logs", "logs": text})],
                files: Vec::new(),
            }),
        },
        written: Vec::new(),
    })
}

/// Uploads the run's files: all of them (`all`, a new session), or those whose names the
/// session lacks. Returns notes for the model about files that could not be uploaded.
async fn upload_files(
    ctx: &Ctx,
    turn: &CodeTurn<'_>,
    session: &SessionId,
    all: bool,
) -> Result<Vec<String>, ExecError> {
    if turn.files.is_empty() {
        return Ok(Vec::new());
    }
    let present: HashSet<String> = if all {
        HashSet::new()
    } else {
        turn.executor
            .list_files(session)
            .await?
            .into_iter()
            .map(|f| f.path)
            .collect()
    };
    let mut notes = Vec::new();
    for file in turn.files.iter().filter(|f| !present.contains(&f.name)) {
        let _held = turn.ci.hold_transfer(file.bytes).await;
        let content = match file::read_content(ctx.store.as_ref(), &ctx.tenant, &file.file_id).await
        {
            Ok(Some(bytes)) => bytes,
            Ok(None) => continue,
            Err(e) => {
                log::warn!("cannot read {} for code_interpreter: {e}", file.file_id);
                notes.push(format!(
                    "Note: /mnt/data/{} could not be provided (storage error).",
                    file.name
                ));
                continue;
            }
        };
        match turn.executor.upload(session, &file.name, content).await {
            Ok(_) => {}
            Err(
                e @ (ExecError::FileTooLarge(_)
                | ExecError::NoSpace(_)
                | ExecError::InvalidInput(_)),
            ) => notes.push(format!(
                "Note: /mnt/data/{} could not be provided: {e}.",
                file.name
            )),
            Err(e) => return Err(e),
        }
    }
    Ok(notes)
}

struct Stored {
    images: Vec<String>,
    files: Vec<OutputFile>,
    keys: Vec<String>,
    /// Files the cell wrote that were not exported, with the reason.
    left_out: Vec<(String, String)>,
    /// Figures not exported (over the bytes left).
    images_left_out: usize,
}

/// Stores a cell's figures and written files as `assistants_output` files, within the
/// export limits: files in listing order while they fit the count and the bytes left
/// (figures count against the bytes first), the others are left out.
async fn store_outputs(
    ctx: &Ctx,
    turn: &CodeTurn<'_>,
    record: &RunRecord,
    session: &SessionId,
    cell: &CellOutput,
    number: u32,
) -> Result<Stored, ApiError> {
    let mut stored = Stored {
        images: Vec::new(),
        files: Vec::new(),
        keys: Vec::new(),
        left_out: Vec::new(),
        images_left_out: 0,
    };
    let limits = turn.ci.export_limits();
    let mut bytes_left = limits.bytes;
    // Ids from the run, the turn and the call's number in it: the same on a repeated turn.
    let file_id = |k: u32| derived_id(Kind::File, &record.run.id, number * 64 + k);
    for (k, png) in cell.images.iter().take(32).enumerate() {
        if png.len() as u64 > bytes_left {
            stored.images_left_out += 1;
            continue;
        }
        bytes_left -= png.len() as u64;
        let id = file_id(k as u32);
        let keys = file::put_output(
            ctx.store.as_ref(),
            &ctx.tenant,
            &id,
            &format!("image-{}.png", k + 1),
            png.clone(),
        )
        .await?;
        stored.keys.extend(keys);
        stored.images.push(id);
    }
    let inputs: HashSet<&str> = turn.files.iter().map(|f| f.name.as_str()).collect();
    for file in &cell.files {
        // A user's file the cell only rewrote in place is theirs already.
        if inputs.contains(file.path.as_str()) {
            continue;
        }
        let limit = bytes_left.min(ctx.runs.max_file_bytes);
        let exported = stored.files.len();
        let content = match take_out(turn, session, file, limit, exported).await {
            Ok(Some(content)) => content,
            Ok(None) => continue,
            Err(why) => {
                stored.left_out.push((file.path.clone(), why));
                continue;
            }
        };
        bytes_left -= content.len() as u64;
        // 32 ids per call are kept for written files (file_id(32..64)).
        let id = file_id(32 + exported as u32);
        let name = file.path.rsplit('/').next().unwrap_or(&file.path);
        let keys = file::put_output(ctx.store.as_ref(), &ctx.tenant, &id, name, content).await?;
        stored.keys.extend(keys);
        stored.files.push(OutputFile {
            path: file.path.clone(),
            file_id: id,
        });
    }
    Ok(stored)
}

/// A written file's bytes out of the session, if it fits the export limits (`limit`: the
/// bytes it may have; `exported`: the files the cell saved so far). `Err` says why it is
/// left out; `None`, it could not be read.
async fn take_out(
    turn: &CodeTurn<'_>,
    session: &SessionId,
    file: &FileInfo,
    limit: u64,
    exported: usize,
) -> Result<Option<bytes::Bytes>, String> {
    let limits = turn.ci.export_limits();
    if exported >= limits.files.min(32) {
        return Err(format!("a cell may save {} files", limits.files.min(32)));
    }
    if file.bytes > limit {
        return Err(format!(
            "{} bytes; a cell may save {} bytes in all",
            file.bytes, limits.bytes
        ));
    }
    // The size is checked again as it is read: the file may have grown since.
    let _held = turn.ci.hold_transfer(file.bytes.min(limit)).await;
    match turn.executor.download(session, &file.path, limit).await {
        Ok(content) => Ok(Some(content)),
        Err(ExecError::FileTooLarge(_)) => {
            Err(format!("a cell may save {} bytes in all", limits.bytes))
        }
        Err(e) => {
            log::warn!(
                "cannot take /mnt/data/{} out of the session: {e}",
                file.path
            );
            Ok(None)
        }
    }
}

/// The number of a call for its output ids: unique per turn, attempt and call.
pub fn call_number(record: &RunRecord, attempt: u32, index: usize) -> u32 {
    (record.seq * MAX_ATTEMPTS + attempt) * 64 + index.min(63) as u32
}

/// `file_path` annotations for `sandbox:/mnt/data/<path>` links to files the run's cells
/// wrote, with character indices into `text`.
pub fn file_path_annotations(text: &str, written: &[OutputFile]) -> Vec<Value> {
    const PREFIX: &str = "sandbox:/mnt/data/";
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(rel) = text[at..].find(PREFIX) {
        let start = at + rel;
        let rest = &text[start + PREFIX.len()..];
        // The longest written path the link starts with.
        let best = written
            .iter()
            .filter(|f| rest.starts_with(f.path.as_str()))
            .max_by_key(|f| f.path.len());
        match best {
            Some(f) => {
                let end = start + PREFIX.len() + f.path.len();
                let start_index = text[..start].chars().count();
                let marker = &text[start..end];
                out.push(json!({
                    "type": "file_path",
                    "text": marker,
                    "start_index": start_index,
                    "end_index": start_index + marker.chars().count(),
                    "file_path": {"file_id": f.file_id},
                }));
                at = end;
            }
            None => at = start + PREFIX.len(),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_valid() {
        let files = mount_names(vec![
            ("file-a".into(), "data.csv".into(), 1),
            ("file-b".into(), "notes.txt".into(), 2),
            ("file-c".into(), "notes.txt".into(), 3),
            ("file-d".into(), "..".into(), 4),
        ]);
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "data.csv",
                "file-b-notes.txt",
                "file-c-notes.txt",
                "file-d-.."
            ]
        );
        assert!(files.iter().all(|f| check_upload_name(&f.name).is_ok()));
    }

    #[test]
    fn sandbox_links_become_file_path_annotations() {
        let written = vec![
            OutputFile {
                path: "out.csv".into(),
                file_id: "file-x".into(),
            },
            OutputFile {
                path: "out.csv.gz".into(),
                file_id: "file-y".into(),
            },
        ];
        let text = "Ünïcode [csv](sandbox:/mnt/data/out.csv) and sandbox:/mnt/data/out.csv.gz, \
                    not sandbox:/mnt/data/other.txt";
        let found = file_path_annotations(text, &written);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0]["file_path"]["file_id"], "file-x");
        assert_eq!(found[0]["text"], "sandbox:/mnt/data/out.csv");
        let start = found[0]["start_index"].as_u64().unwrap() as usize;
        let chars: Vec<char> = text.chars().collect();
        let shown: String = chars[start..found[0]["end_index"].as_u64().unwrap() as usize]
            .iter()
            .collect();
        assert_eq!(shown, "sandbox:/mnt/data/out.csv");
        assert_eq!(found[1]["file_path"]["file_id"], "file-y");
    }
}
