//! Message content as requests send it.

use super::*;

/// Message content in a request: a string, or an array of text and image parts.
pub struct MessageContentInput;

impl PartialSchema for MessageContentInput {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "The text (at most 256,000 characters), or an array of content parts (text, \
                 image_file, image_url).",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(256_000)),
            )
            .item(
                ArrayBuilder::new()
                    .items(crate::api::types::InputPart::schema())
                    .min_items(Some(1)),
            )
            .into()
    }
}

impl ToSchema for MessageContentInput {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        crate::api::types::InputPart::schemas(schemas);
    }
}
