//! `GET /`: the playground, a form for every served model fitted to its task (text →
//! label bars; entities highlighted by type; a sentence's similarity to others and a
//! search over a pasted list; a question's answer in its context; an image's labels, its
//! objects' boxes, its zero-shot scores over any labels). It is a page and one script
//! (`server/assets/playground/`), served from the binary, calling the server's own public
//! routes: what it shows is what the API answers.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Html;

use crate::page;

const SCRIPT: &str = include_str!("../assets/playground/playground.js");

/// `GET /`.
pub async fn index() -> Html<String> {
    Html(page::document(
        "Playground",
        r#"<main>
<ul id="models" aria-label="served models"></ul>
<section id="model"><p>Loading the models…</p></section>
</main>
<script src="/assets/playground.js"></script>"#,
    ))
}

fn asset(text: &'static str, media: &'static str) -> (HeaderMap, &'static str) {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    (headers, text)
}

/// `GET /assets/playground.js`.
pub async fn script() -> (HeaderMap, &'static str) {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /assets/modelcrate.css`.
pub async fn stylesheet() -> (HeaderMap, &'static str) {
    asset(page::STYLESHEET, "text/css; charset=utf-8")
}
