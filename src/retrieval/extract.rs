//! Text out of uploaded files, by format: plain text, Markdown, JSON, CSV, HTML, PDF and
//! DOCX. A file of another type ends its vector-store file `failed` with `unsupported_file`;
//! one that claims a known format but cannot be read as one with `invalid_file`.
//!
//! PDF goes through `pdf-extract` (on `lopdf`), which can panic on malformed documents (it
//! runs under `catch_unwind`) and can recurse or allocate without bound on hostile ones:
//! the service runs `extract` only in a child process with limits (`extractor`), never in
//! its own. DOCX is a zip holding `word/document.xml`, read with `zip` and `quick-xml`:
//! paragraphs become lines. A compressed stream (a PDF's FlateDecode stream, the DOCX's
//! document part) may not inflate beyond `ExtractLimits::max_stream_bytes`.

use std::io::Read;

#[derive(Debug, PartialEq)]
pub enum ExtractError {
    /// A format the service does not read.
    Unsupported(String),
    /// A readable format whose content is broken, or beyond the limits.
    Invalid(String),
    /// The service could not extract now (the extraction process did not start, the file
    /// could not be read from the store): try again later.
    Unavailable(String),
}

impl ExtractError {
    pub fn code(&self) -> &'static str {
        match self {
            ExtractError::Unsupported(_) => "unsupported_file",
            ExtractError::Invalid(_) => "invalid_file",
            ExtractError::Unavailable(_) => "server_error",
        }
    }
    pub fn message(&self) -> &str {
        match self {
            ExtractError::Unsupported(m)
            | ExtractError::Invalid(m)
            | ExtractError::Unavailable(m) => m,
        }
    }
}

/// Bounds of one extraction.
#[derive(Debug, Clone, Copy)]
pub struct ExtractLimits {
    /// Largest decompressed stream (a PDF stream, a DOCX part).
    pub max_stream_bytes: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_stream_bytes: 256 << 20,
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
pub fn extract(
    filename: &str,
    content_type: &str,
    bytes: &[u8],
    limits: &ExtractLimits,
) -> Result<String, ExtractError> {
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
        "pdf" => pdf_text(filename, bytes, limits)?,
        "docx" => docx_text(filename, bytes, limits)?,
        e if TEXT_EXTENSIONS.contains(&e) => text()?,
        _ if content_type.starts_with("application/pdf") => pdf_text(filename, bytes, limits)?,
        _ if content_type.starts_with(DOCX_TYPE) => docx_text(filename, bytes, limits)?,
        _ if content_type.starts_with("text/html") => html_text(&text()?),
        _ if content_type.starts_with("text/") || content_type == "application/json" => text()?,
        _ => {
            return Err(ExtractError::Unsupported(format!(
                "{filename}: files of this type ({}) cannot be searched; supported are text, \
                 Markdown, JSON, CSV, HTML, PDF and DOCX.",
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

const DOCX_TYPE: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// The text of a PDF, page by page. `pdf-extract` panics on some malformed files; the
/// panic is caught and the file reported as invalid. Before it runs, every FlateDecode
/// stream it may decode is inflated into nothing to check its size: a bomb is refused here
/// rather than when the parser inflates it into memory.
fn pdf_text(filename: &str, bytes: &[u8], limits: &ExtractLimits) -> Result<String, ExtractError> {
    let invalid =
        |why: String| ExtractError::Invalid(format!("{filename} is not a readable PDF: {why}."));
    if !bytes.starts_with(b"%PDF-") {
        return Err(invalid("it does not start with a PDF header".into()));
    }
    let result = std::panic::catch_unwind(|| {
        let mut doc = pdf_extract::Document::load_mem(bytes)?;
        if doc.is_encrypted() {
            doc.decrypt("")?;
        }
        if let Some(too_big) = oversized_stream(&doc, limits.max_stream_bytes) {
            return Ok(Err(too_big));
        }
        let mut text = String::new();
        pdf_extract::output_doc(&doc, &mut pdf_extract::PlainTextOutput::new(&mut text))?;
        Ok::<_, pdf_extract::OutputError>(Ok(text))
    });
    match result {
        Ok(Ok(Ok(text))) => Ok(tidy_lines(&text)),
        Ok(Ok(Err(id))) => Err(invalid(format!(
            "its stream {} {} inflates beyond {} MB",
            id.0,
            id.1,
            limits.max_stream_bytes >> 20
        ))),
        Ok(Err(e)) => Err(invalid(e.to_string())),
        Err(_) => Err(invalid("its structure could not be parsed".into())),
    }
}

/// The first FlateDecode stream of `doc` that inflates to more than `limit` bytes. Images
/// are skipped: text extraction never decodes them.
fn oversized_stream(doc: &pdf_extract::Document, limit: u64) -> Option<pdf_extract::ObjectId> {
    use flate2::read::ZlibDecoder;
    for (id, object) in &doc.objects {
        let Ok(stream) = object.as_stream() else {
            continue;
        };
        let image = stream
            .dict
            .get(b"Subtype")
            .and_then(|s| s.as_name())
            .is_ok_and(|s| s == b"Image");
        let flate = stream
            .filters()
            .is_ok_and(|f| f.iter().any(|f| *f == b"FlateDecode" || *f == b"Fl"));
        if image || !flate {
            continue;
        }
        let mut inflated = ZlibDecoder::new(stream.content.as_slice()).take(limit + 1);
        let size = std::io::copy(&mut inflated, &mut std::io::sink()).unwrap_or(0);
        if size > limit {
            return Some(*id);
        }
    }
    None
}

/// The text of a DOCX document: each paragraph (`w:p`) a line, tabs and breaks kept.
fn docx_text(filename: &str, bytes: &[u8], limits: &ExtractLimits) -> Result<String, ExtractError> {
    use quick_xml::events::Event;
    let invalid =
        |why: String| ExtractError::Invalid(format!("{filename} is not a readable DOCX: {why}."));
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| invalid(e.to_string()))?;
    let mut xml = Vec::new();
    archive
        .by_name("word/document.xml")
        .map_err(|e| invalid(format!("word/document.xml: {e}")))?
        .take(limits.max_stream_bytes + 1)
        .read_to_end(&mut xml)
        .map_err(|e| invalid(format!("word/document.xml: {e}")))?;
    if xml.len() as u64 > limits.max_stream_bytes {
        return Err(invalid(format!(
            "word/document.xml inflates beyond {} MB",
            limits.max_stream_bytes >> 20
        )));
    }
    let mut reader = quick_xml::Reader::from_reader(xml.as_slice());
    let mut buf = Vec::new();
    let mut out = String::new();
    // Only `w:t` holds document text (field codes, properties and the like are elsewhere).
    let mut in_text = false;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => match e.name().as_ref() {
                b"w:t" => in_text = true,
                b"w:tab" => out.push('\t'),
                b"w:br" | b"w:cr" => out.push('\n'),
                _ => {}
            },
            Ok(Event::Empty(e)) => match e.name().as_ref() {
                b"w:tab" => out.push('\t'),
                b"w:br" | b"w:cr" | b"w:p" => out.push('\n'),
                _ => {}
            },
            Ok(Event::End(e)) => match e.name().as_ref() {
                b"w:t" => in_text = false,
                b"w:p" => out.push('\n'),
                _ => {}
            },
            Ok(Event::Text(t)) if in_text => {
                let text = t
                    .decode()
                    .map_err(|e| invalid(format!("word/document.xml: {e}")))?;
                out.push_str(
                    &quick_xml::escape::unescape(&text)
                        .map_err(|e| invalid(format!("word/document.xml: {e}")))?,
                );
            }
            Ok(Event::GeneralRef(r)) if in_text => {
                // An entity such as `&amp;` (quick-xml reports these apart from the text).
                let name = r
                    .decode()
                    .map_err(|e| invalid(format!("word/document.xml: {e}")))?;
                let entity = format!("&{name};");
                out.push_str(&quick_xml::escape::unescape(&entity).unwrap_or_default());
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(invalid(format!("word/document.xml: {e}"))),
        }
        buf.clear();
    }
    Ok(tidy_lines(&out))
}

/// Lines trimmed at the end, runs of blank lines down to one.
fn tidy_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}

/// The readable text of an HTML document: no tags, scripts or styles; block elements
/// become line breaks; common entities decoded. One pass over the input: every byte is
/// looked at a bounded number of times, whatever the markup (a search for the end of each
/// `<script>` over a lower-cased copy of the rest of the document made 4 MB of script
/// tags take 43 s).
pub fn html_text(html: &str) -> String {
    const BLOCKS: &[&str] = &[
        "p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
        "table",
    ];
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len() / 2);
    let mut at = 0;
    while let Some(lt) = find_byte(bytes, at, b'<') {
        out.push_str(&html[at..lt]);
        let Some(gt) = find_byte(bytes, lt + 1, b'>') else {
            // An unterminated tag: nothing readable follows.
            at = bytes.len();
            break;
        };
        let tag = html[lt + 1..gt].trim_start();
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .take(16)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        at = gt + 1;
        if (name == "script" || name == "style") && !closing {
            // Skip to the end of the closing tag (or of the document).
            let close = if name == "script" {
                "</script"
            } else {
                "</style"
            };
            at = match find_ascii_ci(bytes, at, close.as_bytes()) {
                Some(i) => find_byte(bytes, i, b'>').map_or(bytes.len(), |j| j + 1),
                None => bytes.len(),
            };
            continue;
        }
        if BLOCKS.contains(&name.as_str()) {
            out.push('\n');
        }
    }
    out.push_str(&html[at..]);
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

/// The index of the first `byte` at or after `from`.
fn find_byte(bytes: &[u8], from: usize, byte: u8) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|b| *b == byte)
        .map(|i| from + i)
}

/// The index of the first occurrence of `needle` (ASCII, lower case) at or after `from`,
/// ignoring ASCII case.
fn find_ascii_ci(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = from;
    while let Some(i) = find_byte(bytes, at, first) {
        let candidate = bytes.get(i..i + needle.len())?;
        if candidate.eq_ignore_ascii_case(needle) {
            return Some(i);
        }
        at = i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(name: &str, content_type: &str, bytes: &[u8]) -> Result<String, ExtractError> {
        extract(name, content_type, bytes, &ExtractLimits::default())
    }

    #[test]
    fn formats() {
        assert_eq!(ex("a.txt", "text/plain", b"hello").unwrap(), "hello");
        assert!(ex("a.json", "", b"{\"k\": 1}")
            .unwrap()
            .contains("\"k\": 1"));
        assert_eq!(
            ex("a.json", "", b"{oops").unwrap_err().code(),
            "invalid_file"
        );
        assert_eq!(
            ex("a.bin", "application/octet-stream", &[0, 1, 2])
                .unwrap_err()
                .code(),
            "unsupported_file"
        );
        assert_eq!(
            ex("a.txt", "text/plain", &[0xff, 0xfe]).unwrap_err().code(),
            "invalid_file"
        );
        assert_eq!(
            ex("a.txt", "text/plain", b"   ").unwrap_err().code(),
            "invalid_file"
        );
    }

    const OFFICE_PDF: &[u8] = include_bytes!("../../tests/fixtures/glaciers.pdf");
    const OFFICE_DOCX: &[u8] = include_bytes!("../../tests/fixtures/lighthouses.docx");

    #[test]
    fn office_documents_give_their_text() {
        let pdf = ex("glaciers.pdf", "application/pdf", OFFICE_PDF).unwrap();
        assert!(pdf.starts_with("How glaciers shape the land"), "{pdf}");
        assert!(pdf.contains("glaciers carve valleys"), "{pdf}");
        // By content type alone, too.
        assert_eq!(ex("upload", "application/pdf", OFFICE_PDF).unwrap(), pdf);
        let docx = ex("lighthouses.docx", "", OFFICE_DOCX).unwrap();
        let lines: Vec<&str> = docx.lines().collect();
        assert_eq!(lines[0], "Lighthouse keepers");
        assert!(
            lines[2].starts_with("Before automation, keepers lived"),
            "{docx}"
        );
        assert_eq!(ex("upload", DOCX_TYPE, OFFICE_DOCX).unwrap(), docx);
    }

    #[test]
    fn broken_documents_are_invalid_not_fatal() {
        for (name, bytes) in [
            ("a.pdf", &b"%PDF-1.7 and then nothing"[..]),
            ("a.pdf", &b"not a pdf"[..]),
            ("a.pdf", &OFFICE_PDF[..OFFICE_PDF.len() / 2]),
            ("a.docx", &b"PK\x03\x04 not really a zip"[..]),
            ("a.docx", &OFFICE_DOCX[..OFFICE_DOCX.len() / 2]),
            ("a.docx", OFFICE_PDF),
        ] {
            let e = ex(name, "", bytes).unwrap_err();
            assert_eq!(e.code(), "invalid_file", "{name}: {e:?}");
        }
        // Damaged copies (bytes overwritten all through the file): each gives text or
        // `invalid_file`, and none panics out of `extract`.
        let mut seed = 12345u64;
        for round in 0..60 {
            let mut bytes = OFFICE_PDF.to_vec();
            for _ in 0..(1 + round % 8) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let at = 16 + (seed >> 33) as usize % (bytes.len() - 16);
                bytes[at] = (seed >> 20) as u8;
            }
            if let Err(e) = ex("a.pdf", "", &bytes) {
                assert_eq!(e.code(), "invalid_file");
            }
        }
    }

    #[test]
    fn docx_markup_becomes_lines() {
        let xml = r#"<w:document xmlns:w="w"><w:body>
            <w:p><w:r><w:t>Fish &amp; chips</w:t></w:r><w:r><w:tab/><w:t xml:space="preserve"> for two</w:t></w:r></w:p>
            <w:p><w:r><w:instrText>PAGE</w:instrText><w:t>Line one</w:t><w:br/><w:t>line two</w:t></w:r></w:p>
            <w:p/><w:p><w:r><w:t>&lt;end&gt;</w:t></w:r></w:p>
            </w:body></w:document>"#;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file(
            "word/document.xml",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        std::io::Write::write_all(&mut zip, xml.as_bytes()).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        assert_eq!(
            ex("a.docx", "", &bytes).unwrap(),
            "Fish & chips\t for two\nLine one\nline two\n\n<end>"
        );
    }

    #[test]
    fn html_loses_its_markup() {
        let text = html_text("<html><head><style>p{}</style><script>var x=1;</script></head><body><h1>Title</h1><p>One &amp; two</p></body></html>");
        assert_eq!(text, "Title\nOne & two");
    }
}
