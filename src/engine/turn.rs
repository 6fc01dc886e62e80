//! A turn's decision: from the run and the model's answer (its text, tool calls, finish
//! reason and usage, and what the built-in tools returned), what the turn writes and how the
//! run moves, as plain data. No I/O, no store, no clock: `commit` performs it.

use super::{citations, code_interpreter, file_search};
use crate::llm::{Completion, Usage};
use crate::model::run::{tool_step_details, RoundCall, RunRecord, ToolRound};
use crate::model::step::StepStatus;
use crate::model::values::{text_part, ContentPart, ImageFile, Tool};
use serde_json::{json, Value};

/// What the built-in tools of an answer with tool calls returned.
pub enum ToolsRan<'a> {
    /// The round: client calls as they came, built-in calls with their results.
    Round(&'a ToolRound),
    /// A built-in tool failed in a way the run cannot go on from.
    Fatal(&'a str),
}

/// The model's answer to a turn.
pub struct Answer<'a> {
    pub completion: &'a Completion,
    /// Its usage: reported, or counted when the endpoint reported none.
    pub usage: Usage,
    /// The name the turn gave the code interpreter, when it offered it.
    pub code_fn: Option<&'a str>,
    /// What its built-in tools returned; `None` when the answer has no tool calls.
    pub tools: Option<ToolsRan<'a>>,
}

/// What a turn comes to.
#[derive(Debug, PartialEq)]
pub enum TurnOutcome {
    /// The answer cannot be used: the run fails (`server_error`) with this message.
    Failed(String),
    /// Write these, then move the run.
    Write(Box<Writes>),
}

/// What a turn writes, and how the run moves after.
#[derive(Debug, PartialEq)]
pub struct Writes {
    /// The assistant message (the whole answer, or the text that came with tool calls) and
    /// its `message_creation` step.
    pub message: Option<MessageWrite>,
    /// The `tool_calls` step (it carries the turn's usage).
    pub tool_step: Option<ToolStepWrite>,
    pub run: RunMove,
    /// The turn's usage, added to the run's.
    pub usage: Usage,
}

#[derive(Debug, PartialEq)]
pub struct MessageWrite {
    pub content: Vec<ContentPart>,
    /// `incomplete` (`max_tokens`) rather than `completed`.
    pub incomplete: bool,
    /// The step's usage: the turn's when the message is the turn's only step.
    pub step_usage: Option<Usage>,
}

#[derive(Debug, PartialEq)]
pub struct ToolStepWrite {
    pub details: Value,
    /// `in_progress` while the client owes outputs, `completed` when every call was built-in.
    pub status: StepStatus,
}

/// How the run moves from `in_progress` (each move also adds the turn's usage and ends the
/// turn: `seq + 1`).
#[derive(Debug, PartialEq)]
pub enum RunMove {
    Completed,
    /// The answer was cut at the completion limit (`finish_reason: length`).
    Incomplete,
    /// The client owes outputs for the round's function calls.
    RequiresAction {
        required_action: Value,
        round: ToolRound,
    },
    /// Every call was built-in and answered: the run stays `in_progress` for another turn.
    NextRound {
        round: ToolRound,
    },
    /// A response's answer with function calls: the response ends `completed` with them,
    /// and the client answers them in a new response (there is no `requires_action`).
    CompletedWithCalls {
        round: ToolRound,
    },
}

/// Why the answer's tool calls cannot be used: a call of a function the run does not define.
pub fn refused_call(
    record: &RunRecord,
    completion: &Completion,
    code_fn: Option<&str>,
) -> Option<String> {
    let known: Vec<&str> = record
        .run
        .tools
        .iter()
        .filter_map(|t| match t {
            Tool::Function { function } => Some(function.name.as_str()),
            _ => None,
        })
        .chain(file_search::function_name(record))
        .chain(code_fn)
        .collect();
    let bad = completion
        .tool_calls
        .iter()
        .find(|c| !known.contains(&c.name.as_str()))?;
    Some(format!(
        "The model called a function '{}' that the run does not define.",
        bad.name
    ))
}

/// Decides what the turn writes and how the run moves.
pub fn decide(record: &RunRecord, answer: &Answer<'_>) -> TurnOutcome {
    let completion = answer.completion;
    if let Some(message) = refused_call(record, completion, answer.code_fn) {
        return TurnOutcome::Failed(message);
    }
    let round = match (&answer.tools, completion.tool_calls.is_empty()) {
        (_, true) => None,
        (Some(ToolsRan::Round(round)), false) => Some(*round),
        (Some(ToolsRan::Fatal(message)), false) => return TurnOutcome::Failed(message.to_string()),
        (None, false) => return TurnOutcome::Failed("The model's tool calls were not run.".into()),
    };
    let truncated = completion.finish_reason.as_deref() == Some("length");
    let message = (round.is_none() || !completion.text.is_empty()).then(|| MessageWrite {
        content: answer_content(record, completion),
        incomplete: round.is_none() && truncated,
        step_usage: round.is_none().then_some(answer.usage),
    });
    // The client answers its function calls; built-in calls are answered already.
    let waits = round.is_some_and(|r| r.calls.iter().any(RoundCall::is_client_call));
    let is_response = record.response.is_some();
    let tool_step = round.map(|r| ToolStepWrite {
        details: tool_step_details(r),
        status: if waits && !is_response {
            StepStatus::InProgress
        } else {
            StepStatus::Completed
        },
    });
    let run = match round {
        Some(round) if waits && is_response => RunMove::CompletedWithCalls {
            round: round.clone(),
        },
        Some(round) if waits => RunMove::RequiresAction {
            required_action: required_action(round),
            round: round.clone(),
        },
        Some(round) => RunMove::NextRound {
            round: round.clone(),
        },
        None if truncated => RunMove::Incomplete,
        None => RunMove::Completed,
    };
    TurnOutcome::Write(Box::new(Writes {
        message,
        tool_step,
        run,
        usage: answer.usage,
    }))
}

/// The message's content: the refusal, or the figures the run's code drew since its last
/// message (first, as OpenAI's answers had them) and the text, whose citation markers and
/// links to files the run's code wrote are annotated.
fn answer_content(record: &RunRecord, completion: &Completion) -> Vec<ContentPart> {
    let text = &completion.text;
    if let (Some(refusal), true) = (completion.refusal.as_deref(), text.is_empty()) {
        return vec![ContentPart::Refusal {
            refusal: refusal.to_string(),
        }];
    }
    let (written_files, images) = code_interpreter::outputs_so_far(record);
    let mut parts: Vec<ContentPart> = images
        .into_iter()
        .map(|file_id| ContentPart::ImageFile {
            image_file: ImageFile {
                file_id,
                detail: None,
            },
        })
        .collect();
    let mut part = text_part(text.clone());
    if let ContentPart::Text { text: t } = &mut part {
        let mut annotations = citations::annotate(text, &file_search::sources(record));
        annotations.extend(code_interpreter::file_path_annotations(
            text,
            &written_files,
        ));
        annotations.sort_by_key(|a| a["start_index"].as_u64().unwrap_or(0));
        t.annotations = annotations;
    }
    parts.push(part);
    parts
}

/// The run's `required_action`: the round's client calls.
fn required_action(round: &ToolRound) -> Value {
    let calls: Vec<Value> = round
        .calls
        .iter()
        .filter(|c| c.is_client_call())
        .map(|c| {
            json!({
                "id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            })
        })
        .collect();
    json!({
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {"tool_calls": calls},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolCall;
    use crate::model::run::ServerCall;

    fn record(tools: Value) -> RunRecord {
        serde_json::from_value(json!({
            "id": "run_abc", "object": "thread.run", "created_at": 1,
            "thread_id": "thread_abc", "assistant_id": "asst_abc", "status": "in_progress",
            "required_action": null, "last_error": null, "expires_at": null,
            "started_at": 1, "cancelled_at": null, "failed_at": null, "completed_at": null,
            "incomplete_details": null, "model": "m", "instructions": "", "tools": tools,
            "metadata": {}, "usage": null, "temperature": null, "top_p": null,
            "max_prompt_tokens": null, "max_completion_tokens": null,
            "truncation_strategy": {"type": "auto"}, "tool_choice": "auto",
            "parallel_tool_calls": true, "response_format": "auto",
        }))
        .unwrap()
    }

    fn with_function() -> RunRecord {
        record(json!([{"type": "function", "function": {"name": "lookup"}}]))
    }

    fn usage() -> Usage {
        Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            total_tokens: 15,
        }
    }

    fn said(text: &str, finish: &str) -> Completion {
        Completion {
            text: text.into(),
            finish_reason: Some(finish.into()),
            ..Default::default()
        }
    }

    fn calling(text: &str, names: &[&str]) -> Completion {
        Completion {
            text: text.into(),
            tool_calls: names
                .iter()
                .enumerate()
                .map(|(i, n)| ToolCall {
                    id: format!("call_{i}"),
                    name: n.to_string(),
                    arguments: "{}".into(),
                })
                .collect(),
            finish_reason: Some("tool_calls".into()),
            ..Default::default()
        }
    }

    fn call(id: &str, name: &str, server: Option<ServerCall>) -> RoundCall {
        RoundCall {
            id: id.into(),
            name: name.into(),
            arguments: "{}".into(),
            output: server.as_ref().map(|_| "ran".to_string()),
            server,
        }
    }

    fn searched() -> Option<ServerCall> {
        Some(ServerCall::FileSearch {
            ranking_options: json!({}),
            results: Vec::new(),
        })
    }

    fn decided(record: &RunRecord, completion: &Completion, tools: Option<ToolsRan>) -> Writes {
        let answer = Answer {
            completion,
            usage: usage(),
            code_fn: None,
            tools,
        };
        match decide(record, &answer) {
            TurnOutcome::Write(w) => *w,
            other => panic!("not written: {other:?}"),
        }
    }

    fn text_of(message: &MessageWrite) -> &str {
        match message.content.last() {
            Some(ContentPart::Text { text }) => &text.value,
            other => panic!("no text: {other:?}"),
        }
    }

    #[test]
    fn an_answer_completes_the_run_with_a_message() {
        let w = decided(&record(json!([])), &said("hello", "stop"), None);
        let message = w.message.as_ref().unwrap();
        assert_eq!(text_of(message), "hello");
        assert!(!message.incomplete);
        assert_eq!(message.step_usage, Some(usage()));
        assert_eq!(w.tool_step, None);
        assert_eq!(w.run, RunMove::Completed);
        assert_eq!(w.usage, usage());
    }

    #[test]
    fn an_answer_cut_at_the_limit_leaves_the_run_incomplete() {
        let w = decided(&record(json!([])), &said("hel", "length"), None);
        assert!(w.message.as_ref().unwrap().incomplete);
        assert_eq!(w.run, RunMove::Incomplete);
    }

    #[test]
    fn a_refusal_is_the_message_content() {
        let mut completion = said("", "stop");
        completion.refusal = Some("no".into());
        let w = decided(&record(json!([])), &completion, None);
        assert_eq!(
            w.message.unwrap().content,
            vec![ContentPart::Refusal {
                refusal: "no".into()
            }]
        );
        assert_eq!(w.run, RunMove::Completed);
    }

    #[test]
    fn function_calls_require_action() {
        let record = with_function();
        let completion = calling("", &["lookup"]);
        let round = ToolRound {
            step_id: "step_x".into(),
            text: None,
            calls: vec![call("call_0", "lookup", None)],
        };
        let w = decided(&record, &completion, Some(ToolsRan::Round(&round)));
        assert_eq!(w.message, None, "no text, no message");
        let step = w.tool_step.unwrap();
        assert_eq!(step.status, StepStatus::InProgress);
        assert_eq!(step.details, tool_step_details(&round));
        let RunMove::RequiresAction {
            required_action,
            round: moved,
        } = w.run
        else {
            panic!("not requires_action")
        };
        assert_eq!(moved, round);
        assert_eq!(
            required_action["submit_tool_outputs"]["tool_calls"][0]["function"]["name"],
            "lookup"
        );
    }

    #[test]
    fn a_response_ends_completed_with_its_function_calls() {
        let mut record = with_function();
        record.response = Some(Default::default());
        let round = ToolRound {
            step_id: "step_x".into(),
            text: None,
            calls: vec![call("call_0", "lookup", None)],
        };
        let w = decided(
            &record,
            &calling("", &["lookup"]),
            Some(ToolsRan::Round(&round)),
        );
        assert_eq!(w.run, RunMove::CompletedWithCalls { round });
        assert_eq!(w.tool_step.map(|t| t.status), Some(StepStatus::Completed));
        assert_eq!(w.message, None);
    }

    #[test]
    fn text_with_calls_is_its_own_message_without_the_usage() {
        let record = with_function();
        let completion = calling("let me look", &["lookup"]);
        let round = ToolRound {
            step_id: "step_x".into(),
            text: Some("let me look".into()),
            calls: vec![call("call_0", "lookup", None)],
        };
        let w = decided(&record, &completion, Some(ToolsRan::Round(&round)));
        let message = w.message.unwrap();
        assert_eq!(text_of(&message), "let me look");
        assert_eq!(message.step_usage, None);
        assert!(!message.incomplete);
        assert!(matches!(w.run, RunMove::RequiresAction { .. }));
    }

    #[test]
    fn built_in_calls_only_go_on_with_another_round() {
        let record = record(json!([{"type": "file_search"}]));
        let completion = calling("", &["file_search"]);
        let round = ToolRound {
            step_id: "step_x".into(),
            text: None,
            calls: vec![call("call_0", "file_search", searched())],
        };
        let w = decided(&record, &completion, Some(ToolsRan::Round(&round)));
        assert_eq!(w.tool_step.unwrap().status, StepStatus::Completed);
        assert_eq!(w.run, RunMove::NextRound { round });
    }

    #[test]
    fn built_in_calls_mixed_with_functions_wait_for_the_functions_only() {
        let mut record = with_function();
        record
            .run
            .tools
            .extend(record_tools(json!([{"type": "file_search"}])));
        let completion = calling("", &["lookup", "file_search"]);
        let round = ToolRound {
            step_id: "step_x".into(),
            text: None,
            calls: vec![
                call("call_0", "lookup", None),
                call("call_1", "file_search", searched()),
            ],
        };
        let w = decided(&record, &completion, Some(ToolsRan::Round(&round)));
        let RunMove::RequiresAction {
            required_action, ..
        } = w.run
        else {
            panic!("not requires_action")
        };
        let owed = required_action["submit_tool_outputs"]["tool_calls"]
            .as_array()
            .unwrap();
        assert_eq!(owed.len(), 1);
        assert_eq!(owed[0]["id"], "call_0");
    }

    fn record_tools(tools: Value) -> Vec<Tool> {
        serde_json::from_value(tools).unwrap()
    }

    #[test]
    fn a_call_of_an_unknown_function_is_refused() {
        let completion = calling("", &["lookup", "rm_rf"]);
        let answer = Answer {
            completion: &completion,
            usage: usage(),
            code_fn: None,
            tools: None,
        };
        let outcome = decide(&with_function(), &answer);
        assert_eq!(
            outcome,
            TurnOutcome::Failed(
                "The model called a function 'rm_rf' that the run does not define.".into()
            )
        );
        assert_eq!(
            refused_call(&with_function(), &calling("", &["lookup"]), None),
            None
        );
    }

    #[test]
    fn the_code_interpreter_is_known_only_when_the_turn_offered_it() {
        let record = record(json!([{"type": "code_interpreter"}]));
        let completion = calling("", &["python"]);
        assert!(refused_call(&record, &completion, None).is_some());
        assert_eq!(refused_call(&record, &completion, Some("python")), None);
    }

    #[test]
    fn a_fatal_built_in_tool_fails_the_run() {
        let record = record(json!([{"type": "code_interpreter"}]));
        let completion = calling("", &["python"]);
        let answer = Answer {
            completion: &completion,
            usage: usage(),
            code_fn: Some("python"),
            tools: Some(ToolsRan::Fatal("The code interpreter failed: gone")),
        };
        assert_eq!(
            decide(&record, &answer),
            TurnOutcome::Failed("The code interpreter failed: gone".into())
        );
    }

    #[test]
    fn figures_of_earlier_rounds_come_first_and_links_are_annotated() {
        let mut record = record(json!([{"type": "code_interpreter"}]));
        record.rounds.push(ToolRound {
            step_id: "step_x".into(),
            text: None,
            calls: vec![call(
                "call_0",
                "python",
                Some(ServerCall::CodeInterpreter {
                    input: "plot()".into(),
                    outputs: vec![json!({"type": "image", "image": {"file_id": "file-img"}})],
                    files: vec![crate::model::run::OutputFile {
                        path: "out.csv".into(),
                        file_id: "file-csv".into(),
                    }],
                }),
            )],
        });
        let w = decided(
            &record,
            &said("See sandbox:/mnt/data/out.csv", "stop"),
            None,
        );
        let content = w.message.unwrap().content;
        assert_eq!(content.len(), 2);
        assert!(
            matches!(&content[0], ContentPart::ImageFile { image_file } if image_file.file_id == "file-img")
        );
        let ContentPart::Text { text } = &content[1] else {
            panic!("no text")
        };
        assert_eq!(text.annotations.len(), 1);
        assert_eq!(text.annotations[0]["file_path"]["file_id"], "file-csv");
    }
}
