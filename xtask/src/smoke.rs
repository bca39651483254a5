//! The end of the main job, checked: start the real server binary on a free loopback
//! port, ask it the README's question, let real clients (`python/modelcrate/clients.py`:
//! the `openai` package, `huggingface_hub`'s InferenceClient on TEI's routes, and KServe
//! v2 requests in plain HTTP) talk to it, validate its
//! `/openapi.json` with a standard OpenAPI validator (`openapi-spec-validator`, from the
//! tools venv), test every route from that document with Schemathesis (`schemathesis`),
//! drive the playground and a model card in Chromium (`browser`), and stop
//! it with SIGTERM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;

use crate::paths::Paths;
use crate::pipeline::release_binary;
use crate::python::Venv;
use crate::{browser, schemathesis};

const QUESTION: &str = r#"{"inputs": "Arsenal beat Chelsea 2-1 in the league on Saturday"}"#;
const EXPECTED_LABEL: &str = "sports";

/// A server process, stopped with SIGTERM (then killed after 10 s) when dropped.
pub struct Server(Child);

impl Server {
    pub fn new(child: Child) -> Self {
        Self(child)
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Waits until `GET path` at `host:port` answers 200; fails at once if the server
    /// exits first (a port in use, a model that does not load).
    pub fn wait_ready(&mut self, host: &str, port: u16, path: &str, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait()? {
                bail!("the server exited before it was ready ({status})");
            }
            if let Ok((200, _)) = request_at(host, port, "GET", path, "") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the server did not answer {path} with 200 on {host}:{port} within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends SIGTERM and waits for a clean exit within `within` (a Kubernetes rollout's
    /// termination); an error if it fails or takes longer.
    pub fn terminate_and_wait(mut self, within: Duration) -> Result<()> {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait()? {
                if !status.success() {
                    bail!("the server exited with {status} on SIGTERM");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the server had not exited {within:?} after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the server to exit (on SIGINT or SIGTERM); an error if it failed.
    pub fn wait(mut self) -> Result<()> {
        let status = self.0.wait().context("cannot wait for the server")?;
        if !status.success() {
            bail!("the server failed ({status})");
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends one HTTP/1.1 request to 127.0.0.1 and returns (status, body).
pub fn request(port: u16, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
    request_at("127.0.0.1", port, method, path, body)
}

/// Sends one HTTP/1.1 request to `host:port` and returns (status, body).
pub fn request_at(host: &str, port: u16, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
    request_with(host, port, method, path, &[], body, Duration::from_secs(30))
}

/// [`request_at`] with extra `headers` (each `Name: value`), waiting at most `within`
/// for the answer.
pub fn request_with(
    host: &str,
    port: u16,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
    within: Duration,
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect((host, port))?;
    stream.set_read_timeout(Some(within))?;
    let extra: String = headers.iter().map(|header| format!("{header}\r\n")).collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP response: {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A loopback port nothing listens on now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The release server on a free loopback port over the artifacts, with `extra` flags,
/// once `/health/ready` answers 200; its port.
fn start_ready(paths: &Paths, ort_dylib: &Path, extra: &[&str]) -> Result<(Server, u16)> {
    let port = free_port()?;
    let binary = release_binary(paths, "modelcrate-server");
    let mut server = Server::new(
        Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(extra)
            .arg("--artifacts")
            .arg(paths.artifacts())
            .env("ORT_DYLIB_PATH", ort_dylib)
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?,
    );
    server.wait_ready("127.0.0.1", port, "/health/ready", Duration::from_secs(60))?;
    Ok((server, port))
}

pub fn run(paths: &Paths, ort_dylib: &Path, python: &Path) -> Result<()> {
    let tools = Venv::tools(paths)?;
    let (server, port) = start_ready(paths, ort_dylib, &["--admin-token", schemathesis::ADMIN_TOKEN])?;
    let (status, body) = request(port, "POST", "/models/news-topic/predict", QUESTION)?;
    if status != 200 {
        bail!("POST /models/news-topic/predict answered {status}: {body}");
    }
    let answer: serde_json::Value = serde_json::from_str(&body).with_context(|| format!("not JSON: {body}"))?;
    let label = answer[0]["label"].as_str().unwrap_or_default();
    if label != EXPECTED_LABEL {
        bail!("POST /models/news-topic/predict {QUESTION} answered {body}; expected top label `{EXPECTED_LABEL}`");
    }
    eprintln!("    POST /models/news-topic/predict {QUESTION}\n    → {body}");
    // TEI serves one model a process, and its clients name none: they get a server of
    // the embedding model alone, as a TEI user runs it.
    let (tei, tei_port) = start_ready(paths, ort_dylib, &["--model", "news-embed", "--watch-interval-ms", "0"])?;
    let status = Command::new(python)
        .args([
            "-m",
            "modelcrate.clients",
            "--base",
            &format!("http://127.0.0.1:{port}"),
            "--tei-base",
            &format!("http://127.0.0.1:{tei_port}"),
        ])
        .current_dir(&paths.root)
        .env("PYTHONPATH", paths.root.join("python"))
        // huggingface_hub refuses every URL offline, this server's too; the clients talk
        // to nothing else.
        .env_remove("HF_HUB_OFFLINE")
        .status()
        .context("cannot run python -m modelcrate.clients")?;
    drop(tei);
    if !status.success() {
        bail!("a real client failed against the server ({status}); see its message above");
    }
    validate_openapi(paths, port, &tools)?;
    schemathesis::run(paths, port, &tools)?;
    browser::run(paths, port, &tools)?;
    drop(server);
    Ok(())
}

/// Requests whose answers are checked against the document's schemas: (the route as
/// the document names it, the path asked, the body, what it shows).
const SAMPLES: [(&str, &str, &str, &str); 15] = [
    (
        "/models/news-topic/predict",
        "/models/news-topic/predict",
        r#"{"inputs": "Arsenal beat Chelsea"}"#,
        "the best label",
    ),
    (
        "/models/news-topic/predict",
        "/models/news-topic/predict",
        r#"{"inputs": ["Arsenal won", "Stocks fell"]}"#,
        "best labels of a list",
    ),
    (
        "/models/news-topic/predict",
        "/models/news-topic/predict",
        r#"{"inputs": "Stocks fell", "parameters": {"top_k": null}}"#,
        "every label",
    ),
    (
        "/models/news-topic/predict",
        "/models/news-topic/predict",
        r#"{"inputs": ["Arsenal won", "Stocks fell"], "parameters": {"top_k": 2}}"#,
        "top 2 of a list",
    ),
    (
        "/models/news-embed/predict",
        "/models/news-embed/predict",
        r#"{"inputs": ["a text", "another"]}"#,
        "vectors",
    ),
    (
        "/models/release-ner/predict",
        "/models/release-ner/predict",
        r#"{"inputs": "PostgreSQL 16.2 is out"}"#,
        "entity groups",
    ),
    (
        "/models/release-ner/predict",
        "/models/release-ner/predict",
        r#"{"inputs": ["Redis 7.2 is out"], "parameters": {"aggregation_strategy": "none"}}"#,
        "token labels",
    ),
    (
        "/models/release-qa/predict",
        "/models/release-qa/predict",
        r#"{"inputs": {"question": "Which release fixes the leak?", "context": "Redis 7.2.5 fixes the leak."}}"#,
        "an answer",
    ),
    (
        "/models/release-qa/predict",
        "/models/release-qa/predict",
        r#"{"inputs": [{"question": "Which release?", "context": "Redis 7.2.5 is out."}, {"question": "Which product?", "context": "Redis 7.2.5 is out."}], "parameters": {"top_k": 2, "handle_impossible_answer": true}}"#,
        "two questions' answers, best two each",
    ),
    (
        "/embed",
        "/embed",
        r#"{"inputs": ["a text"], "model": "news-embed"}"#,
        "TEI vectors",
    ),
    (
        "/predict",
        "/predict",
        r#"{"inputs": [["a text"], ["another"]], "model": "news-topic"}"#,
        "TEI labels of a batch",
    ),
    (
        "/tokenize",
        "/tokenize",
        r#"{"inputs": "a text", "model": "news-topic"}"#,
        "TEI tokens",
    ),
    (
        "/v1/embeddings",
        "/v1/embeddings",
        r#"{"model": "news-embed", "input": ["a text"], "encoding_format": "base64"}"#,
        "OpenAI base64",
    ),
    (
        "/v1/embeddings",
        "/v1/embeddings",
        r#"{"model": "animal-clip", "input": ["a photo of a zebra."]}"#,
        "OpenAI vectors of an image–text model's text tower",
    ),
    (
        "/v2/models/{name}/infer",
        "/v2/models/news-topic/infer",
        r#"{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a text"]}]}"#,
        "KServe outputs",
    ),
];

/// The image models' requests, golden images as base64 JSON: the detector's (one alone
/// and a list of two), the image–text model's zero-shot classification and image
/// embeddings.
/// A request of every task and protocol, each answered 200 by a server of every model:
/// (the route as the document names it, the path asked, the body, what it shows).
pub fn samples_of_every_task(paths: &Paths) -> Result<Vec<(&'static str, &'static str, String, &'static str)>> {
    let texts = SAMPLES
        .iter()
        .map(|(route, path, body, what)| (*route, *path, (*body).to_string(), *what));
    Ok(texts.chain(image_samples(paths)?).collect())
}

fn image_samples(paths: &Paths) -> Result<Vec<(&'static str, &'static str, String, &'static str)>> {
    let encoded = |model: &str, name: &str| -> Result<String> {
        let path = paths.golden(model).join("images").join(name);
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    };
    let (scene, empty) = (
        encoded("animal-detect", "scene-0-256x256.png")?,
        encoded("animal-detect", "empty-320x240.png")?,
    );
    let zebra = encoded("animal-clip", "zebra.png")?;
    let route = "/models/animal-detect/predict";
    Ok(vec![
        (
            "/models/animal-clip/predict",
            "/models/animal-clip/predict",
            serde_json::json!({"inputs": zebra, "parameters": {"candidate_labels": ["zebra", "horse", "cat"]}})
                .to_string(),
            "zero-shot scores of an image",
        ),
        (
            "/models/animal-clip/image-embeddings",
            "/models/animal-clip/image-embeddings",
            serde_json::json!({"inputs": [zebra]}).to_string(),
            "image embeddings",
        ),
        (
            route,
            route,
            serde_json::json!({"inputs": scene}).to_string(),
            "objects in an image",
        ),
        (
            route,
            route,
            serde_json::json!({"inputs": [scene, empty], "parameters": {"threshold": 0.3}}).to_string(),
            "objects in each of two images",
        ),
    ])
}

/// Fetches the server's `/openapi.json` into `artifacts/openapi.json`, validates it with
/// `openapi-spec-validator`, and checks real answers of every protocol against it
/// (`python/tools/openapi_answers.py`).
fn validate_openapi(paths: &Paths, port: u16, tools: &Venv) -> Result<()> {
    let (status, body) = request(port, "GET", "/openapi.json", "")?;
    if status != 200 {
        bail!("GET /openapi.json answered {status}: {body}");
    }
    let document = paths.artifacts().join("openapi.json");
    std::fs::write(&document, &body).with_context(|| format!("cannot write {}", document.display()))?;
    let output = Command::new(tools.python())
        .args(["-m", "openapi_spec_validator"])
        .arg(&document)
        .output()
        .context("cannot run python -m openapi_spec_validator")?;
    if !output.status.success() {
        bail!(
            "{} (GET /openapi.json) is not a valid OpenAPI document:\n{}{}",
            document.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    eprintln!(
        "    GET /openapi.json: {}",
        String::from_utf8_lossy(&output.stdout).trim()
    );
    let mut samples = Vec::new();
    for (route, path, body, what) in samples_of_every_task(paths)? {
        let (status, answer) = request(port, "POST", path, &body)?;
        if status != 200 {
            bail!("POST {path} {body} answered {status}: {answer}");
        }
        let answer: serde_json::Value =
            serde_json::from_str(&answer).with_context(|| format!("POST {path} answered no JSON: {answer}"))?;
        samples.push(serde_json::json!({"path": route, "method": "post", "answer": answer, "what": what}));
    }
    let answers = paths.artifacts().join("openapi-answers.json");
    std::fs::write(&answers, serde_json::to_vec(&samples)?)
        .with_context(|| format!("cannot write {}", answers.display()))?;
    let output = Command::new(tools.python())
        .arg(paths.root.join("python/tools/openapi_answers.py"))
        .arg(&document)
        .arg(&answers)
        .output()
        .context("cannot run python/tools/openapi_answers.py")?;
    if !output.status.success() {
        bail!(
            "answers of the server do not fit its /openapi.json ({}, {}):\n{}",
            document.display(),
            answers.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    eprintln!("    {}", String::from_utf8_lossy(&output.stdout).trim());
    Ok(())
}

/// Waits until `GET path` on `port` answers 200.
pub fn wait_healthy(port: u16, path: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok((200, _)) = request(port, "GET", path, "") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("nothing answered {path} with 200 on port {port} within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
