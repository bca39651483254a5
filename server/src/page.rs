//! The server's own pages, the playground (`/`) and the model cards (`/models/{name}`):
//! one document shell, one stylesheet, HTML escaping and Markdown rendering. Everything
//! is served from the binary; no page loads anything from elsewhere.

use pulldown_cmark::{Event, Parser, html};

/// The pages' stylesheet, `GET /assets/modelcrate.css`.
pub const STYLESHEET: &str = include_str!("../assets/playground/modelcrate.css");

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Markdown as HTML; HTML written in the Markdown is shown as text, never run, and its
/// comments (a generated card's provenance) are left out.
pub fn markdown(text: &str) -> String {
    // A comment's block comes one line per event: left out from `<!--` through `-->`.
    let mut in_comment = false;
    let events = Parser::new(text)
        .filter(|event| {
            let Event::Html(raw) = event else { return true };
            if raw.trim_start().starts_with("<!--") {
                in_comment = true;
            }
            let kept = !in_comment;
            if raw.contains("-->") {
                in_comment = false;
            }
            kept
        })
        .map(|event| match event {
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            other => other,
        });
    let mut rendered = String::new();
    html::push_html(&mut rendered, events);
    rendered
}

/// `body` (already HTML) as a page's text column.
pub fn article(body: &str) -> String {
    format!("<div class=\"page\">\n{body}\n</div>")
}

/// A whole page: the bar on top, then `body` (already HTML).
pub fn document(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · Modelcrate</title>
<link rel="stylesheet" href="/assets/modelcrate.css">
</head>
<body>
<div class="top"><a class="brand" href="/">Modelcrate</a><nav><a href="/">Playground</a><a href="/docs">API</a><a href="/openapi.json">OpenAPI</a><a href="/metrics">Metrics</a></nav></div>
{body}
</body>
</html>
"#,
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_markdown_html_is_shown_not_run() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let rendered = markdown(
            "- **Task:** `text-classification`\n- <script>alert(1)</script>\n\n<!-- generated\nover two lines -->\n",
        );
        assert!(
            rendered.contains("<strong>Task:</strong> <code>text-classification</code>"),
            "{rendered}"
        );
        assert!(
            !rendered.contains("<script>") && rendered.contains("&lt;script&gt;"),
            "{rendered}"
        );
        assert!(
            !rendered.contains("generated") && !rendered.contains("lines"),
            "comments are left out: {rendered}"
        );
        assert!(document("a <b>", "<p>x</p>").contains("<title>a &lt;b&gt; · Modelcrate</title>"));
    }
}
