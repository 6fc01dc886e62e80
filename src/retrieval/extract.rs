//! Text out of uploaded files, by format: plain text, Markdown, JSON, CSV, HTML.
//! A file that is not text ends its vector-store file `failed` with `unsupported_file`; one
//! that claims a text format but cannot be read as one with `invalid_file`.

#[derive(Debug, PartialEq)]
pub enum ExtractError {
    /// A format the service does not read.
    Unsupported(String),
    /// A readable format whose content is broken.
    Invalid(String),
}

impl ExtractError {
    pub fn code(&self) -> &'static str {
        match self {
            ExtractError::Unsupported(_) => "unsupported_file",
            ExtractError::Invalid(_) => "invalid_file",
        }
    }
    pub fn message(&self) -> &str {
        match self {
            ExtractError::Unsupported(m) | ExtractError::Invalid(m) => m,
        }
    }
}

fn extension(filename: &str) -> String {
    filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

const TEXT_EXTENSIONS: &[&str] = &[
    "txt", "md", "markdown", "csv", "tsv", "log", "rst", "py", "js", "ts", "rs", "go", "java", "c",
    "cpp", "h", "cs", "rb", "php", "sh", "css", "xml", "yaml", "yml", "tex",
];

/// The text of a file, from its name, declared content type and bytes.
pub fn extract(filename: &str, content_type: &str, bytes: &[u8]) -> Result<String, ExtractError> {
    let ext = extension(filename);
    let text = || {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| ExtractError::Invalid(format!("{filename} is not valid UTF-8 text.")))
    };
    let out = match ext.as_str() {
        "json" => {
            let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
                ExtractError::Invalid(format!("{filename} is not valid JSON: {e}."))
            })?;
            serde_json::to_string_pretty(&value).unwrap_or_default()
        }
        "html" | "htm" => html_text(&text()?),
        e if TEXT_EXTENSIONS.contains(&e) => text()?,
        _ if content_type.starts_with("text/html") => html_text(&text()?),
        _ if content_type.starts_with("text/") || content_type == "application/json" => text()?,
        _ => {
            return Err(ExtractError::Unsupported(format!(
                "{filename}: files of this type ({}) cannot be searched; supported are text, \
                 Markdown, JSON, CSV and HTML.",
                if ext.is_empty() {
                    content_type.to_string()
                } else {
                    format!(".{ext}")
                }
            )))
        }
    };
    if out.trim().is_empty() {
        return Err(ExtractError::Invalid(format!(
            "{filename} contains no text."
        )));
    }
    Ok(out)
}

/// The readable text of an HTML document: no tags, scripts or styles; block elements
/// become line breaks; common entities decoded.
pub fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find('>') else {
            break;
        };
        let tag = after[1..end].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        rest = &after[end + 1..];
        if (name == "script" || name == "style") && !tag.starts_with('/') {
            // Skip to the closing tag.
            let close = format!("</{name}");
            match rest.to_ascii_lowercase().find(&close) {
                Some(i) => {
                    let tail = &rest[i..];
                    rest = tail.find('>').map(|j| &tail[j + 1..]).unwrap_or("");
                }
                None => rest = "",
            }
            continue;
        }
        if matches!(
            name.as_str(),
            "p" | "br"
                | "div"
                | "li"
                | "tr"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "section"
                | "article"
                | "table"
        ) {
            out.push('\n');
        }
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(extract("a.txt", "text/plain", b"hello").unwrap(), "hello");
        assert!(extract("a.json", "", b"{\"k\": 1}")
            .unwrap()
            .contains("\"k\": 1"));
        assert_eq!(
            extract("a.json", "", b"{oops").unwrap_err().code(),
            "invalid_file"
        );
        assert_eq!(
            extract("a.bin", "application/octet-stream", &[0, 1, 2])
                .unwrap_err()
                .code(),
            "unsupported_file"
        );
        assert_eq!(
            extract("a.txt", "text/plain", &[0xff, 0xfe])
                .unwrap_err()
                .code(),
            "invalid_file"
        );
        assert_eq!(
            extract("a.txt", "text/plain", b"   ").unwrap_err().code(),
            "invalid_file"
        );
    }

    #[test]
    fn html_loses_its_markup() {
        let text = html_text("<html><head><style>p{}</style><script>var x=1;</script></head><body><h1>Title</h1><p>One &amp; two</p></body></html>");
        assert_eq!(text, "Title\nOne & two");
    }
}
