//! Image requests (an image classifier's, an object detector's), in the three shapes
//! clients send images in:
//!
//! - the raw bytes of one image, `Content-Type: image/png` or `image/jpeg` (as the
//!   Hugging Face Inference API takes them), with parameters in the query string
//!   (`?top_k=3&function_to_apply=softmax`, `?threshold=0.7`);
//! - `multipart/form-data` (an HTML form or `curl -F image=@cat.png`): every file part is
//!   an image, and the text parts named as the task's parameters are parameters;
//! - JSON `{"inputs": base64 | [base64], "parameters": {…}}`, base64 with or without a
//!   `data:image/…;base64,` prefix.
//!
//! Each task's parameters say their names and their JSON body ([`ImageParameters`]); the
//! answer is the task's pipeline's, one per image (one image not sent as a list is
//! answered alone).

use axum::body::Bytes;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::request::{
    ClassifyParameters, DetectionParameters, DetectionRequest, ImageEmbedRequest, ImagesRequest, NoParameters,
    ZeroShotParameters, ZeroShotRequest,
};
use crate::wire::{self, Inputs};

/// The parameters of an image task's requests.
pub trait ImageParameters: DeserializeOwned + Default {
    /// Their names: the keys of a query string and the text parts of a form they take.
    const NAMES: &'static [&'static str];
    /// Those of them whose value is text: a query's or a form's `0` is the string "0"
    /// for these, the number 0 for the others.
    const TEXTS: &'static [&'static str] = &[];
    /// The task's JSON body: base64 images and these parameters.
    type Body: DeserializeOwned;
    /// The body's images and parameters.
    fn from_body(body: Self::Body) -> (Inputs, Option<Self>);
}

impl ImageParameters for ClassifyParameters {
    const NAMES: &'static [&'static str] = &["top_k", "function_to_apply"];
    const TEXTS: &'static [&'static str] = &["function_to_apply"];
    type Body = ImagesRequest;

    fn from_body(body: ImagesRequest) -> (Inputs, Option<Self>) {
        (body.inputs, body.parameters)
    }
}

impl ImageParameters for DetectionParameters {
    const NAMES: &'static [&'static str] = &["threshold", "iou_threshold"];
    type Body = DetectionRequest;

    fn from_body(body: DetectionRequest) -> (Inputs, Option<Self>) {
        (body.inputs, body.parameters)
    }
}

impl ImageParameters for NoParameters {
    const NAMES: &'static [&'static str] = &[];
    type Body = ImageEmbedRequest;

    fn from_body(body: ImageEmbedRequest) -> (Inputs, Option<Self>) {
        (body.inputs, None)
    }
}

impl ImageParameters for ZeroShotParameters {
    const NAMES: &'static [&'static str] = &["candidate_labels", "hypothesis_template"];
    const TEXTS: &'static [&'static str] = Self::NAMES;
    type Body = ZeroShotRequest;

    fn from_body(body: ZeroShotRequest) -> (Inputs, Option<Self>) {
        (body.inputs, body.parameters)
    }
}

#[derive(Debug)]
pub struct ImageRequest<P> {
    /// Encoded images, PNG or JPEG, not yet decoded.
    pub images: Vec<Bytes>,
    /// One image not sent as a list: the answer is that image's alone.
    pub single: bool,
    pub parameters: P,
}

/// The media type of a `Content-Type` value, lower-cased, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

impl<P: ImageParameters> ImageRequest<P> {
    /// Parses a request by its `Content-Type`; `query` is the URL's query string.
    pub async fn parse(
        content_type: Option<&str>,
        query: Option<&str>,
        body: Bytes,
        max_inputs: usize,
    ) -> Result<Self, ApiError> {
        let Some(content_type) = content_type else {
            return Err(ApiError::UnsupportedMediaType(
                "none; an image model takes image/png, image/jpeg, multipart/form-data or application/json".into(),
            ));
        };
        let media = media_type(content_type);
        match media.as_str() {
            "application/json" => Self::from_json(&body, max_inputs),
            "multipart/form-data" => Self::from_multipart(content_type, body, max_inputs).await,
            image if image.starts_with("image/") => {
                let parameters = query_parameters::<P>(query.unwrap_or_default())?;
                Self::with_gathered(vec![body], true, parameters)
            }
            _ => Err(ApiError::UnsupportedMediaType(format!(
                "{content_type}; an image model takes image/png, image/jpeg, multipart/form-data or application/json"
            ))),
        }
    }

    /// The request of `images` with parameters gathered from a query string or a form.
    fn with_gathered(images: Vec<Bytes>, single: bool, parameters: Map<String, Value>) -> Result<Self, ApiError> {
        let parameters: P = wire::parse_value(Value::Object(parameters), "parameters")?;
        Self::with_parameters(images, single, parameters)
    }

    fn with_parameters(images: Vec<Bytes>, single: bool, parameters: P) -> Result<Self, ApiError> {
        if images.is_empty() {
            return Err(ApiError::Validation("the request holds no image".into()));
        }
        Ok(Self {
            images,
            single,
            parameters,
        })
    }

    fn from_json(body: &[u8], max_inputs: usize) -> Result<Self, ApiError> {
        let (inputs, parameters) = P::from_body(wire::parse(body)?);
        let parameters = parameters.unwrap_or_default();
        let inputs = inputs.at_most(max_inputs, "inputs", "base64-encoded image")?;
        let (images, single) = match &inputs {
            Inputs::One(encoded) => (vec![base64_image(encoded, "inputs")?], true),
            Inputs::Many(list) => {
                let images = list
                    .iter()
                    .enumerate()
                    .map(|(index, encoded)| base64_image(encoded, &format!("inputs[{index}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                (images, false)
            }
        };
        Self::with_parameters(images, single, parameters)
    }

    async fn from_multipart(content_type: &str, body: Bytes, max_inputs: usize) -> Result<Self, ApiError> {
        let boundary = multer::parse_boundary(content_type)
            .map_err(|error| ApiError::Validation(format!("multipart/form-data without a usable boundary: {error}")))?;
        let stream = futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
        let mut multipart = multer::Multipart::new(stream, boundary);
        let mut images = Vec::new();
        let mut parameters = Map::new();
        let malformed = |error: multer::Error| ApiError::Validation(format!("malformed multipart body: {error}"));
        while let Some(field) = multipart.next_field().await.map_err(malformed)? {
            let name = field.name().unwrap_or_default().to_string();
            let is_file =
                field.file_name().is_some() || field.content_type().is_some_and(|mime| mime.type_() == "image");
            let bytes = field.bytes().await.map_err(malformed)?;
            if is_file {
                images.push(bytes);
                if images.len() > max_inputs {
                    return Err(ApiError::PayloadTooLarge(format!(
                        "more than {max_inputs} images in one request (--max-client-batch-size)"
                    )));
                }
            } else if P::NAMES.contains(&name.as_str()) {
                let text = String::from_utf8_lossy(&bytes);
                gather::<P>(&mut parameters, name, &text, "form field")?;
            } else {
                return Err(ApiError::Validation(format!(
                    "unknown form field `{name}`: send images as file parts, and parameters {:?} as text parts",
                    P::NAMES
                )));
            }
        }
        let single = images.len() == 1;
        Self::with_gathered(images, single, parameters)
    }
}

/// Adds parameter `name` given as `text` (a query string's or a form field's value) to
/// `parameters`: a text parameter as the string, any other as JSON's number or `null`
/// when it is one (a string otherwise, refused by the parameter's type). A parameter
/// given twice is refused: which one was meant is not for the server to guess.
fn gather<P: ImageParameters>(
    parameters: &mut Map<String, Value>,
    name: String,
    text: &str,
    place: &str,
) -> Result<(), ApiError> {
    let value = match serde_json::from_str::<Value>(text.trim()) {
        Ok(value @ (Value::Number(_) | Value::Null)) if !P::TEXTS.contains(&name.as_str()) => value,
        _ => Value::String(text.to_string()),
    };
    if parameters.contains_key(&name) {
        return Err(ApiError::Validation(format!(
            "{place} `{name}` is given more than once; give each parameter once"
        )));
    }
    parameters.insert(name, value);
    Ok(())
}

fn query_parameters<P: ImageParameters>(query: &str) -> Result<Map<String, Value>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|error| ApiError::Validation(format!("malformed query string: {error}")))?;
    let mut parameters = Map::new();
    for (name, value) in pairs {
        gather::<P>(&mut parameters, name, &value, "query parameter")?;
    }
    Ok(parameters)
}

/// The bytes of a base64 image, with or without a `data:` URL prefix.
fn base64_image(encoded: &str, place: &str) -> Result<Bytes, ApiError> {
    let data = match encoded.strip_prefix("data:") {
        Some(url) => url.split_once(',').map_or(url, |(_, data)| data),
        None => encoded,
    };
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map(Bytes::from)
        .map_err(|error| {
            ApiError::Validation(format!(
                "`{place}` must be a base64-encoded PNG or JPEG image (an image model takes no text): {error}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    use modelcrate_core::TopK;
    use modelcrate_runtime::ClassificationFunction;

    fn parse(
        content_type: &str,
        query: Option<&str>,
        body: &'static [u8],
    ) -> Result<ImageRequest<ClassifyParameters>, ApiError> {
        parse_as(content_type, query, body)
    }

    fn parse_as<P: ImageParameters>(
        content_type: &str,
        query: Option<&str>,
        body: &'static [u8],
    ) -> Result<ImageRequest<P>, ApiError> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(ImageRequest::parse(
            Some(content_type),
            query,
            Bytes::from_static(body),
            4,
        ))
    }

    #[test]
    fn raw_bytes_take_parameters_from_the_query() {
        let request = parse("image/png", Some("top_k=2&function_to_apply=sigmoid"), b"png").unwrap();
        assert_eq!(
            (request.images.len(), request.single, request.parameters.top_k()),
            (1, true, TopK::K(2))
        );
        assert_eq!(request.parameters.function(), Some(ClassificationFunction::Sigmoid));
        assert_eq!(
            parse("image/jpeg", None, b"jpg").unwrap().parameters.top_k(),
            TopK::Absent
        );
        assert_eq!(
            parse("image/jpeg", Some("top_k=null"), b"jpg")
                .unwrap()
                .parameters
                .top_k(),
            TopK::All
        );
        let error = parse("image/png", Some("threshold=1"), b"png").unwrap_err();
        assert!(
            error.to_string().contains("unknown field `parameters.threshold`"),
            "{error}"
        );
    }

    #[test]
    fn json_takes_base64_and_data_urls_and_names_a_text() {
        let request = parse(
            "application/json",
            None,
            br#"{"inputs": ["aGk=", "data:image/png;base64,aGk="]}"#,
        )
        .unwrap();
        assert_eq!(
            request.images,
            vec![Bytes::from_static(b"hi"), Bytes::from_static(b"hi")]
        );
        assert!(!request.single);
        let error = parse("application/json", None, br#"{"inputs": "a cat on a mat"}"#).unwrap_err();
        assert!(error.to_string().contains("an image model takes no text"), "{error}");
        let error = parse(
            "application/json",
            None,
            br#"{"inputs": ["aGk=", "aGk=", "aGk=", "aGk=", "aGk="]}"#,
        )
        .unwrap_err();
        assert!(matches!(error, ApiError::PayloadTooLarge(_)), "{error}");
    }

    #[test]
    fn multipart_files_are_images_and_text_parts_parameters() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n--XX\r\nContent-Disposition: form-data; name=\"top_k\"\r\n\r\n3\r\n--XX--\r\n";
        let request = parse("multipart/form-data; boundary=XX", None, body).unwrap();
        assert_eq!(request.images, vec![Bytes::from_static(b"PNGDATA")]);
        assert_eq!((request.single, request.parameters.top_k()), (true, TopK::K(3)));
        let stray = b"--XX\r\nContent-Disposition: form-data; name=\"colour\"\r\n\r\nred\r\n--XX--\r\n";
        let error = parse("multipart/form-data; boundary=XX", None, stray).unwrap_err();
        assert!(error.to_string().contains("unknown form field `colour`"), "{error}");
    }

    #[test]
    fn a_detectors_parameters_come_by_their_own_names_in_every_shape() {
        let request: ImageRequest<DetectionParameters> = parse_as("image/png", Some("threshold=0.7"), b"png").unwrap();
        let options = request.parameters.options().unwrap();
        assert_eq!((options.threshold, options.iou_threshold), (0.7, 0.5));
        let form = b"--XX\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\nPNG\r\n--XX\r\nContent-Disposition: form-data; name=\"iou_threshold\"\r\n\r\n0.3\r\n--XX--\r\n";
        let request: ImageRequest<DetectionParameters> =
            parse_as("multipart/form-data; boundary=XX", None, form).unwrap();
        assert_eq!(request.parameters.options().unwrap().iou_threshold, 0.3);
        let json = br#"{"inputs": ["aGk="], "parameters": {"threshold": 1.5}}"#;
        let request: ImageRequest<DetectionParameters> = parse_as("application/json", None, json).unwrap();
        assert!(!request.single);
        let error = request.parameters.options().unwrap_err().to_string();
        assert!(
            error.contains("`parameters.threshold` must be from 0 to 1, not 1.5"),
            "{error}"
        );
        // A classifier's parameter is not a detector's.
        let error = parse_as::<DetectionParameters>("image/png", Some("top_k=2"), b"png").unwrap_err();
        assert!(
            error.to_string().contains("unknown field `parameters.top_k`"),
            "{error}"
        );
    }

    #[test]
    fn a_parameter_given_twice_is_refused_and_a_text_parameter_stays_text() {
        let twice = b"--XX\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\nPNG\r\n--XX\r\nContent-Disposition: form-data; name=\"threshold\"\r\n\r\n0.2\r\n--XX\r\nContent-Disposition: form-data; name=\"threshold\"\r\n\r\n0.9\r\n--XX--\r\n";
        let error = parse_as::<DetectionParameters>("multipart/form-data; boundary=XX", None, twice).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("form field `threshold` is given more than once"),
            "{error}"
        );
        let error =
            parse_as::<DetectionParameters>("image/png", Some("threshold=0.2&threshold=0.9"), b"png").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("query parameter `threshold` is given more than once"),
            "{error}"
        );
        // `0` is a label as text, and `null` a number parameter's absence.
        let labels: ImageRequest<ZeroShotParameters> = parse_as(
            "image/png",
            Some("candidate_labels=0,1&hypothesis_template=null"),
            b"png",
        )
        .unwrap();
        assert_eq!(labels.parameters.labels().unwrap(), vec!["0", "1"]);
        assert_eq!(labels.parameters.template(), "null");
        let all: ImageRequest<ClassifyParameters> = parse_as("image/png", Some("top_k=null"), b"png").unwrap();
        assert_eq!(all.parameters.top_k(), TopK::All);
    }

    #[test]
    fn other_media_types_are_refused_with_what_is_accepted() {
        let error = parse("text/plain", None, b"hello").unwrap_err();
        assert!(matches!(error, ApiError::UnsupportedMediaType(_)));
        assert!(
            error
                .to_string()
                .contains("image/png, image/jpeg, multipart/form-data or application/json")
        );
    }
}
