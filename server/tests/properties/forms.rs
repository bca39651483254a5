//! Image requests as forms and query strings, through the parser every image route uses
//! (`ImageRequest::parse`): any multipart body, well-formed or not, any query string, are
//! read or refused as the client's mistake (400/413/415/422), never a panic; a refusal
//! of a parameter names it.

use axum::body::Bytes;
use modelcrate_server::error::ApiError;
use modelcrate_server::image_request::ImageRequest;
use modelcrate_server::request::{ClassifyParameters, DetectionParameters, ZeroShotParameters};
use proptest::prelude::*;

use crate::{config, hostile_text};

const BOUNDARY: &str = "XyZ";
const MAX_IMAGES: usize = 4;

/// One part of a form: a name (the parameters', an image's, or any), a file name or
/// none, and any bytes.
fn part() -> impl Strategy<Value = (String, Option<String>, Vec<u8>)> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "image",
            "top_k",
            "function_to_apply",
            "threshold",
            "iou_threshold",
            "candidate_labels",
            "hypothesis_template",
        ])
        .prop_map(String::from),
        // A part's name is a quoted header value: no quote or line break.
        hostile_text().prop_map(|name| name.replace(['"', '\r', '\n'], "_")),
    ];
    let value = prop_oneof![
        prop::sample::select(vec!["3", "0", "-1", "2.5", "null", "softmax", "0.5", "a, b", ""])
            .prop_map(|text| text.as_bytes().to_vec()),
        hostile_text().prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    (name, prop::option::of("[a-z]{1,8}\\.png"), value)
}

fn form(parts: &[(String, Option<String>, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file, value) in parts {
        body.extend(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes());
        if let Some(file) = file {
            body.extend(format!("; filename=\"{file}\"").as_bytes());
        }
        body.extend(b"\r\n\r\n");
        body.extend(value);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A refusal is the client's to fix, and a parameter's names it.
fn refused_as_the_clients(error: &ApiError, sent: &[(String, Option<String>, Vec<u8>)]) -> Result<(), TestCaseError> {
    let message = error.to_string();
    prop_assert!(
        matches!(
            error,
            ApiError::Validation(_) | ApiError::PayloadTooLarge(_) | ApiError::UnsupportedMediaType(_)
        ),
        "{error:?}"
    );
    if message.contains("parameters") {
        let named = sent.iter().any(|(name, _, _)| message.contains(name.as_str()));
        prop_assert!(named, "a parameter's refusal names none of the parts sent: {message}");
    }
    Ok(())
}

fn parse<P: modelcrate_server::image_request::ImageParameters + std::fmt::Debug>(
    content_type: &str,
    query: Option<&str>,
    body: Vec<u8>,
) -> Result<ImageRequest<P>, ApiError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(ImageRequest::<P>::parse(
        Some(content_type),
        query,
        Bytes::from(body),
        MAX_IMAGES,
    ))
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn any_form_is_read_or_refused_as_the_clients_mistake(parts in prop::collection::vec(part(), 0..7)) {
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        let body = form(&parts);
        for answer in [
            parse::<ClassifyParameters>(&content_type, None, body.clone()).err(),
            parse::<DetectionParameters>(&content_type, None, body.clone()).err(),
            parse::<ZeroShotParameters>(&content_type, None, body.clone()).err(),
        ]
        .into_iter()
        .flatten()
        {
            refused_as_the_clients(&answer, &parts)?;
        }
    }

    #[test]
    fn any_bytes_as_a_form_are_refused_without_a_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        if let Err(error) = parse::<ClassifyParameters>(&content_type, None, body) {
            refused_as_the_clients(&error, &[])?;
        }
    }

    #[test]
    fn any_query_is_read_or_refused_as_the_clients_mistake(
        pairs in prop::collection::vec((part().prop_map(|(name, _, _)| name), hostile_text()), 0..5),
    ) {
        let query = serde_urlencoded::to_string(&pairs).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let sent: Vec<(String, Option<String>, Vec<u8>)> = pairs.iter().map(|(name, _)| (name.clone(), None, Vec::new())).collect();
        for answer in [
            parse::<ClassifyParameters>("image/png", Some(&query), b"png".to_vec()).err(),
            parse::<DetectionParameters>("image/png", Some(&query), b"png".to_vec()).err(),
            parse::<ZeroShotParameters>("image/png", Some(&query), b"png".to_vec()).err(),
        ]
        .into_iter()
        .flatten()
        {
            refused_as_the_clients(&answer, &sent)?;
        }
    }
}
