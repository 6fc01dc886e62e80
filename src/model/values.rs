//! Value types the records share: tools, tool resources, content parts, attachments,
//! metadata. Each (de)serialises the form stored and answered; requests are parsed into
//! them and checked by the api layer (`api::types`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Up to 16 key-value pairs clients attach to objects (checked by the api layer).
pub type Metadata = BTreeMap<String, String>;

/// The request forms of the tools, one plain struct each (a tagged enum would buffer the
/// value and lose the path of an error inside it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeInterpreterRepr {
    #[serde(rename = "type")]
    _type: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSearchRepr {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default)]
    file_search: Option<FileSearchOptions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionRepr {
    #[serde(rename = "type")]
    _type: String,
    function: FunctionDef,
}

/// Deserialises `value` as `T`, reporting errors with their path inside it, in the words
/// `validate::parse_body` turns into OpenAI's messages.
fn nested<T: serde::de::DeserializeOwned, E: serde::de::Error>(value: &Value) -> Result<T, E> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let at = |field: &str| {
            if path == "." || path.is_empty() || path.ends_with(field) {
                if path == "." || path.is_empty() {
                    field.to_string()
                } else {
                    path.clone()
                }
            } else {
                format!("{path}.{field}")
            }
        };
        if let Some(rest) = message.strip_prefix("missing field `") {
            E::custom(format!(
                "missing field `{}`",
                at(rest.split('`').next().unwrap_or(""))
            ))
        } else if let Some(rest) = message.strip_prefix("unknown field `") {
            E::custom(format!(
                "unknown field `{}`",
                at(rest.split('`').next().unwrap_or(""))
            ))
        } else if path == "." || path.is_empty() {
            E::custom(message)
        } else {
            E::custom(format!("{message} (at '{path}')"))
        }
    })
}

impl<'de> Deserialize<'de> for Tool {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(d)?;
        match value.get("type").and_then(Value::as_str) {
            Some("code_interpreter") => {
                nested::<CodeInterpreterRepr, D::Error>(&value).map(|_| Tool::CodeInterpreter {})
            }
            Some("file_search") => {
                nested::<FileSearchRepr, D::Error>(&value).map(|r| Tool::FileSearch {
                    file_search: r.file_search,
                })
            }
            Some("function") => nested::<FunctionRepr, D::Error>(&value).map(|r| Tool::Function {
                function: r.function,
            }),
            Some(other) => Err(D::Error::custom(format!(
                "unknown variant `{other}`, expected one of `code_interpreter`, `file_search`, \
                 `function` (at 'type')"
            ))),
            None => Err(D::Error::missing_field("type")),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Tool {
    // A struct variant (not a unit one) so that unknown fields are refused here too.
    CodeInterpreter {},
    FileSearch {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_search: Option<FileSearchOptions>,
    },
    Function {
        function: FunctionDef,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSearchOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 50)]
    pub max_num_results: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranking_options: Option<RankingOptions>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RankingOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::schemas::FileSearchRanker>)]
    pub ranker: Option<String>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub score_threshold: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionDef {
    #[schema(pattern = "^[a-zA-Z0-9_-]{1,64}$")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeInterpreterResources {
    #[serde(default)]
    #[schema(max_items = 20)]
    pub file_ids: Vec<String>,
}

/// `tool_resources` as stored and answered.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ToolResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_interpreter: Option<CodeInterpreterResources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_search: Option<FileSearchResources>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct FileSearchResources {
    #[serde(default)]
    pub vector_store_ids: Vec<String>,
}

/// A message content part, as stored and answered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text { text: TextContent },
    ImageFile { image_file: ImageFile },
    ImageUrl { image_url: ImageUrl },
    Refusal { refusal: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct TextContent {
    pub value: String,
    #[serde(default)]
    #[schema(value_type = Vec<super::schemas::Annotation>, required)]
    pub annotations: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageFile {
    pub file_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::schemas::ImageDetail>)]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageUrl {
    #[schema(pattern = "^(https?:|data:)")]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::schemas::ImageDetail>)]
    pub detail: Option<String>,
}

pub fn text_part(value: String) -> ContentPart {
    ContentPart::Text {
        text: TextContent {
            value,
            annotations: Vec::new(),
        },
    }
}

/// A message attachment: a file and the tools it is for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub file_id: String,
    #[serde(default)]
    pub tools: Vec<AttachmentTool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AttachmentTool {
    // Struct variants, so unknown fields are refused here too.
    CodeInterpreter {},
    FileSearch {},
}
