//! How the tool looks to a Chat Completions model, and what a cell's result looks like as
//! text: for the model (the `tool` message) and for the run step's `logs` output.
//!
//! The tool is one function taking the code, described the way OpenAI described its own
//! Python tool (a stateful notebook, `/mnt/data`, no internet, a time limit), which is what
//! models were trained on; it is named `python` as in OpenAI's prompts, unless the assistant
//! has a function of that name. Results are plain text: what was printed, the traceback, the
//! value of the last expression, then one line per image and file, never base64. Long
//! output keeps its beginning and its end.

use super::{CellOutput, ExecError};
use serde_json::{json, Value};
use std::time::Duration;

/// Names tried in order; the first one no function of the assistant uses is taken.
pub const TOOL_NAMES: &[&str] = &["python", "code_interpreter", "python_code_interpreter"];

/// What the model is told after a session had to be started again.
pub const SESSION_RESTARTED_NOTE: &str = "Note: the Python session was restarted; variables, \
imports and files written by earlier code are gone. The user's files were uploaded again to \
/mnt/data.";

/// Characters of a result given back to the model (per call).
pub const MODEL_OUTPUT_CHARS: usize = 12_000;
/// Characters of the `logs` output kept in a run step.
pub const STEP_LOG_CHARS: usize = 32_000;

/// The function name for the tool, avoiding the assistant's own function names.
pub fn tool_name<'a>(taken: impl IntoIterator<Item = &'a str> + Clone) -> &'static str {
    TOOL_NAMES
        .iter()
        .copied()
        .find(|name| !taken.clone().into_iter().any(|t| t == *name))
        .unwrap_or("python_code_interpreter_tool")
}

/// The Chat Completions tool (`{"type": "function", ...}`) for the code interpreter.
/// `executor_kind` is `CodeExecutor::kind()` (the installed packages differ).
pub fn tool_definition(name: &str, timeout: Duration, executor_kind: &str) -> Value {
    let packages = if executor_kind == "azure" {
        "numpy, pandas, matplotlib, scikit-learn and other common data packages"
    } else {
        "numpy, pandas and matplotlib"
    };
    let description = format!(
        "Runs Python code. When you send Python code to this tool, it is executed in a stateful \
         Jupyter notebook environment: variables and imports persist between calls, and the \
         value of the last expression is shown. The tool responds with the output of the \
         execution or times out after {} seconds. The drive at '/mnt/data' can be used to save \
         and persist user files; files the user attached are there. Internet access for this \
         session is disabled: do not make external web requests or API calls as they will \
         fail, and do not try to install packages. Available besides the standard library: \
         {packages}. To show a chart, draw it with matplotlib: figures are captured and shown \
         to the user automatically (do not print images or base64). Files you save in \
         /mnt/data are given to the user; refer to them as sandbox:/mnt/data/<name>.",
        timeout.as_secs()
    );
    json!({
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "The Python code to run."
                    }
                },
                "required": ["code"]
            }
        }
    })
}

/// The code from a tool call's arguments: `{"code": "..."}`, or the raw text when a model
/// sent code instead of JSON; a surrounding Markdown code fence is removed.
pub fn code_from_arguments(arguments: &str) -> String {
    let code = match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(o)) => match o.get("code").or_else(|| o.get("input")) {
            Some(Value::String(s)) => s.clone(),
            _ => arguments.to_string(),
        },
        _ => arguments.to_string(),
    };
    strip_fence(&code)
}

fn strip_fence(code: &str) -> String {
    let trimmed = code.trim();
    if let Some(rest) = trimmed.strip_prefix("```") {
        if let Some(body) = rest.strip_suffix("```") {
            // Drop the language tag on the opening line (```python).
            let body = match body.split_once('\n') {
                Some((first, tail)) if !first.trim().contains(' ') => tail,
                _ => body,
            };
            return body.trim_end().to_string();
        }
    }
    code.to_string()
}

/// The text of a cell as a notebook shows it: its output, its traceback, and the value of
/// its last expression. This is the run step's `logs` output.
pub fn step_logs(output: &CellOutput, max_chars: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !output.logs.is_empty() {
        parts.push(output.logs.trim_end_matches('\n').to_string());
    }
    if output.logs_truncated {
        parts.push("[output truncated]".into());
    }
    if let Some(e) = &output.error {
        parts.push(e.traceback.trim_end().to_string());
    }
    if let Some(r) = &output.result {
        parts.push(r.clone());
    }
    truncate_middle(&parts.join("\n"), max_chars)
}

/// What the model reads back: the cell's text (as `step_logs`), then a line per image and
/// per file the cell wrote. `restarted` prefixes `SESSION_RESTARTED_NOTE`.
pub fn model_output(output: &CellOutput, restarted: bool, max_chars: usize) -> String {
    let mut text = String::new();
    if restarted {
        text.push_str(SESSION_RESTARTED_NOTE);
        text.push_str("\n\n");
    }
    let body = step_logs(output, max_chars);
    if body.is_empty() && output.images.is_empty() && output.files.is_empty() {
        text.push_str("(no output)");
    } else {
        text.push_str(&body);
    }
    let mut notes = Vec::new();
    match output.images.len() {
        0 => {}
        1 => notes.push("[1 image was shown to the user]".to_string()),
        n => notes.push(format!("[{n} images were shown to the user]")),
    }
    for f in &output.files {
        notes.push(format!(
            "[saved sandbox:/mnt/data/{} ({})]",
            f.path,
            human_size(f.bytes)
        ));
    }
    if !notes.is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&notes.join("\n"));
    }
    text
}

/// What the model reads when the executor failed (not the code): a timeout or a lost
/// session restarts the session; other faults leave it to the model to go on without code.
pub fn model_error(error: &ExecError) -> String {
    match error {
        ExecError::Timeout(limit) => format!(
            "Execution timed out after {} seconds and was stopped. The Python session was \
             restarted: variables and imports from earlier code are gone.",
            limit.as_secs()
        ),
        ExecError::SessionLost(reason) => format!(
            "The Python session ended unexpectedly ({reason}). It was restarted: variables \
             and imports from earlier code are gone."
        ),
        other => format!("The code could not be run: {other}."),
    }
}

fn human_size(bytes: u64) -> String {
    const UNITS: &[&str] = &["bytes", "KB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Keeps the first two thirds and the last third of `max_chars`, with a marker between.
pub fn truncate_middle(text: &str, max_chars: usize) -> String {
    let total = text.chars().count();
    if total <= max_chars {
        return text.to_string();
    }
    let head = max_chars * 2 / 3;
    let tail = max_chars - head;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(total - tail).collect();
    format!(
        "{start}\n[... {} characters truncated ...]\n{end}",
        total - head - tail
    )
}

#[cfg(test)]
mod tests {
    use super::super::{CellError, FileInfo};
    use super::*;
    use bytes::Bytes;

    #[test]
    fn the_tool_is_a_function_taking_code() {
        let tool = tool_definition(tool_name(["get_weather"]), Duration::from_secs(60), "local");
        assert_eq!(tool["function"]["name"], "python");
        assert_eq!(tool["function"]["parameters"]["required"][0], "code");
        let d = tool["function"]["description"].as_str().unwrap();
        for phrase in [
            "stateful",
            "/mnt/data",
            "60 seconds",
            "Internet access",
            "matplotlib",
        ] {
            assert!(d.contains(phrase), "{phrase}");
        }
        assert_eq!(tool_name(["python"]), "code_interpreter");
    }

    #[test]
    fn code_comes_from_json_or_raw_text() {
        assert_eq!(code_from_arguments(r#"{"code": "print(1)"}"#), "print(1)");
        assert_eq!(code_from_arguments("print(2)"), "print(2)");
        assert_eq!(code_from_arguments("```python\nx = 1\nx\n```"), "x = 1\nx");
        assert_eq!(
            code_from_arguments(r#"{"code": "```\nprint(3)\n```"}"#),
            "print(3)"
        );
    }

    #[test]
    fn results_read_like_a_notebook_and_long_output_keeps_both_ends() {
        let output = CellOutput {
            logs: "hello\n".into(),
            result: Some("42".into()),
            error: Some(CellError {
                name: "ValueError".into(),
                message: "bad".into(),
                traceback: "Traceback (most recent call last):\nValueError: bad\n".into(),
            }),
            images: vec![Bytes::from_static(b"png")],
            files: vec![FileInfo {
                path: "out.csv".into(),
                bytes: 1500,
                modified: None,
            }],
            ..Default::default()
        };
        let text = model_output(&output, true, 1000);
        assert!(text.starts_with(SESSION_RESTARTED_NOTE));
        assert!(text.contains("hello\nTraceback (most recent call last):\nValueError: bad\n42"));
        assert!(text.contains("[1 image was shown to the user]"));
        assert!(text.contains("[saved sandbox:/mnt/data/out.csv (1.5 KB)]"));
        assert!(!text.contains("png"));

        let long = format!("{}{}", "a".repeat(5000), "z".repeat(5000));
        let cut = truncate_middle(&long, 300);
        assert!(cut.starts_with(&"a".repeat(200)) && cut.ends_with(&"z".repeat(100)));
        assert!(cut.contains("[... 9700 characters truncated ...]"));
        assert_eq!(
            model_output(&CellOutput::default(), false, 100),
            "(no output)"
        );
    }
}
