//! PDF and DOCX files through vector stores: uploaded over HTTP, ingested by the work queue
//! (text extracted, chunked, embedded by the stand-in), found by `/vector_stores/{id}/search`;
//! corrupt ones end `failed` with `invalid_file`. The documents are real: a PDF written
//! here object by object (with a correct cross-reference table), a DOCX zipped here as Word
//! lays it out, and files made by LibreOffice (`tests/fixtures/`, see its README).

mod support;

use serde_json::{json, Value};
use std::io::Write;
use support::{spawn_app, Backend, TestApp};

async fn wait_for(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..800 {
        let v = app.get(path).await.ok();
        if done(&v) {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{path} never got there: {}", app.get(path).await.body);
}

/// A one-page PDF showing `lines` in Helvetica, one text line each.
pub fn pdf(lines: &[&str]) -> Vec<u8> {
    let escape = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)")
    };
    let mut content = String::from("BT /F1 12 Tf 72 720 Td 14 TL\n");
    for line in lines {
        content.push_str(&format!("({}) Tj T*\n", escape(line)));
    }
    content.push_str("ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
    ];
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A DOCX whose body has `paragraphs` (the second run of each in bold, as Word splits
/// formatted text into runs), with the package parts Word writes.
pub fn docx(paragraphs: &[&str]) -> Vec<u8> {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut body = String::new();
    for p in paragraphs {
        let (a, b) = p.split_at(p.len() / 2);
        body.push_str(&format!(
            "<w:p><w:pPr><w:pStyle w:val=\"Normal\"/></w:pPr><w:r><w:t xml:space=\"preserve\">{}</w:t></w:r>\
             <w:r><w:rPr><w:b/></w:rPr><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>",
            esc(a),
            esc(b)
        ));
    }
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
         <w:body>{body}<w:sectPr/></w:body></w:document>"
    );
    let parts = [
        (
            "[Content_Types].xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
             <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
             <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
             <Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>\
             </Types>".to_string(),
        ),
        (
            "_rels/.rels",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
             <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/>\
             </Relationships>".to_string(),
        ),
        ("word/document.xml", document),
    ];
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in parts {
        zip.start_file(name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

const TELESCOPE: [&str; 3] = [
    "The Hubble Space Telescope was launched in 1990.",
    "Its orbit around Earth lies at an altitude of about 540 kilometres,",
    "above the distortion of the atmosphere (and its weather).",
];
const BREAD: [&str; 3] = [
    "Sourdough bread needs a lively starter & patience.",
    "Knead the dough for ten minutes, then let it rise overnight.",
    "Bake at 250 degrees in a covered pot for a crisp crust.",
];

async fn pdf_and_docx_are_searchable_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let telescope = app.upload(&pdf(&TELESCOPE), "hubble.pdf").await;
    let bread = app.upload(&docx(&BREAD), "sourdough.docx").await;
    // Files made by LibreOffice (embedded font subsets, compressed streams, styles).
    let office_pdf = app
        .upload(include_bytes!("fixtures/glaciers.pdf"), "glaciers.pdf")
        .await;
    let office_docx = app
        .upload(
            include_bytes!("fixtures/lighthouses.docx"),
            "lighthouses.docx",
        )
        .await;
    // Broken: a PDF cut off after its header, a "PDF" that is not one, and a DOCX that is
    // a zip without a document.
    let full = pdf(&TELESCOPE);
    let truncated = app.upload(&full[..full.len() / 3], "cut.pdf").await;
    let not_pdf = app
        .upload(b"just some words, no PDF at all", "fake.pdf")
        .await;
    let mut empty_zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    empty_zip
        .start_file("readme.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    empty_zip.write_all(b"not a document").unwrap();
    let no_document = app
        .upload(&empty_zip.finish().unwrap().into_inner(), "empty.docx")
        .await;

    let vs_id = app
        .post(
            "/vector_stores",
            json!({"file_ids": [telescope, bread, office_pdf, office_docx, truncated, not_pdf, no_document]}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_for(&app, &format!("/vector_stores/{vs_id}"), |v| {
        v["status"] == "completed"
    })
    .await;
    assert_eq!(
        done["file_counts"],
        json!({"in_progress": 0, "completed": 4, "failed": 3, "cancelled": 0, "total": 7})
    );
    for bad in [&truncated, &not_pdf, &no_document] {
        let f = app
            .get(&format!("/vector_stores/{vs_id}/files/{bad}"))
            .await
            .ok();
        assert_eq!(f["status"], "failed");
        assert_eq!(f["last_error"]["code"], "invalid_file", "{f}");
        assert!(f["last_error"]["message"].as_str().unwrap().len() > 10);
    }

    let search = |query: &'static str| {
        let app = &app;
        let path = format!("/vector_stores/{vs_id}/search");
        async move {
            app.post(&path, json!({"query": query, "max_num_results": 3}))
                .await
                .ok()
        }
    };
    let found = search("At what altitude does the Hubble telescope orbit Earth?").await;
    assert_eq!(found["data"][0]["file_id"], telescope.as_str(), "{found}");
    let text = found["data"][0]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("540 kilometres") && text.contains("(and its weather)"),
        "{text}"
    );
    let found = search("How long should I knead sourdough bread dough?").await;
    assert_eq!(found["data"][0]["file_id"], bread.as_str(), "{found}");
    let found = search("Why do glaciers move and carve valleys?").await;
    assert_eq!(found["data"][0]["file_id"], office_pdf.as_str(), "{found}");
    let found = search("Who kept the lighthouse lamps burning at night?").await;
    assert_eq!(found["data"][0]["file_id"], office_docx.as_str(), "{found}");

    // DOCX paragraphs are lines, runs of one paragraph joined, entities decoded.
    let content = app
        .get(&format!("/vector_stores/{vs_id}/files/{bread}/content"))
        .await
        .ok();
    assert_eq!(content["data"][0]["text"], BREAD.join("\n"));
}
both_backends!(
    pdf_and_docx_are_searchable,
    pdf_and_docx_are_searchable_test
);
