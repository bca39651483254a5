//! Every knob of the server: a flag, an environment variable, a key of the optional TOML
//! file (`--config`), and a default — taken in that order.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, FromArgMatches, Parser};
use modelcrate_runtime::{LoadOptions, VariantChoice};

use modelcrate_core::engine_plan::{EngineFlags, LayoutFlag, MergeFlag};

use crate::admin::AdminToken;
use crate::listen::{ConnectionLimits, MIN_HEADER_BYTES};
use crate::reload::Reloader;
use crate::state::Limits;

/// The fewest characters an admin token may have: a shorter one is guessed too soon.
const MIN_ADMIN_TOKEN_LENGTH: usize = 8;

/// `--admin-token`'s parser: never fails, so that clap's error never repeats a token;
/// its length is checked after parsing, by a message that does not show it.
fn admin_token(value: &str) -> Result<AdminToken, std::convert::Infallible> {
    Ok(AdminToken::new(value))
}

/// `--version`'s text (`-V` prints its first line): the ONNX Runtime the binary was
/// built for and the models linked into it.
fn long_version() -> String {
    let models = crate::CATALOG.names(&[]).unwrap_or_default().join(", ");
    format!(
        "{}\nONNX Runtime: 1.31 (API 31), loaded at run time from --ort-dylib or ORT_DYLIB_PATH\nmodels linked: {models}",
        env!("CARGO_PKG_VERSION")
    )
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "modelcrate-server",
    version,
    about = "Serves Modelcrate's generated models over HTTP",
    long_about = "Serves Modelcrate's generated models over HTTP: the Hugging Face Inference API, \
TEI, OpenAI's embeddings and KServe v2, a playground at / and a model card at /models/{name}. \
Every flag is also an environment variable and a key of the --config file."
)]
pub struct Config {
    /// A TOML file of settings: each key is a flag's long name (`max-batch-size = 16`, or
    /// `max_batch_size`; `model = ["news-topic"]`). A flag or an environment variable
    /// overrides the file; the file overrides the defaults.
    #[arg(help_heading = "Server", long, env = "MODELCRATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(help_heading = "Server", long, env = "MODELCRATE_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port, printed at start).
    #[arg(help_heading = "Server", long, env = "MODELCRATE_PORT", default_value_t = 8080)]
    pub port: u16,
    /// How log lines are written (to stdout): `text` for a terminal, `json` (one object per
    /// line, with the request's span fields) for a log collector. `RUST_LOG` sets the levels.
    #[arg(help_heading = "Server", long, env = "MODELCRATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Folder with one sub-folder per model (`<name>/onnx/` as `cargo xtask export` writes it).
    #[arg(
        help_heading = "Model",
        long,
        env = "MODELCRATE_ARTIFACTS",
        default_value = "artifacts"
    )]
    pub artifacts: PathBuf,
    /// ONNX Runtime shared library (libonnxruntime.so.1.31.1); `cargo xtask setup` prints it.
    #[arg(help_heading = "Model", long, env = "ORT_DYLIB_PATH")]
    pub ort_dylib: Option<PathBuf>,
    /// Serve only these models (repeatable); every generated model when absent.
    #[arg(help_heading = "Model", long = "model")]
    pub models: Vec<String>,
    /// Variant of each model to serve: `serving` loads the one `cargo xtask select` chose
    /// (onnx/serving.json; FP32 when there is none), otherwise a name from onnx/variants.json
    /// (`fp32`, `O1`, `O2`, `int8`, `O2-int8`, `int8-static`, …) or an ONNX file name.
    #[arg(help_heading = "Model", long, env = "MODELCRATE_VARIANT", default_value = "serving")]
    pub variant: String,
    /// How each model's runs share the cores. `measured`: what `cargo xtask select`
    /// chose from the variant's measured costs (`serving.json`), else `adaptive`: one
    /// session of every core answers a lone request, one single-thread session per core
    /// serves concurrent ones. `wide`: one session of every core; `narrow`: one
    /// single-thread session per core.
    #[arg(help_heading = "Batching", long, env = "MODELCRATE_LAYOUT", value_enum, default_value_t = LayoutFlag::Measured)]
    pub layout: LayoutFlag,
    /// A fixed layout instead: this many sessions per model (how many runs of one model
    /// may be under way at once), each of `--intra-threads` threads.
    #[arg(help_heading = "Batching", long, env = "MODELCRATE_SESSIONS")]
    pub sessions: Option<usize>,
    /// Intra-op threads per session of a fixed layout; by default the machine's cores
    /// shared out among `--sessions` (sessions × threads ≤ cores is the sane budget).
    #[arg(help_heading = "Batching", long, env = "MODELCRATE_INTRA_THREADS")]
    pub intra_threads: Option<usize>,
    /// Whether concurrent requests merge into one run. `measured`: up to the rows per
    /// length at which the variant's measured cost per text was lowest (`serving.json`),
    /// else never; `off`: never; `on`: up to `--max-batch-size` and `--max-batch-tokens`.
    #[arg(help_heading = "Batching", long, env = "MODELCRATE_MERGE", value_enum, default_value_t = MergeFlag::Measured)]
    pub merge: MergeFlag,
    /// Most texts in one session run: a larger request is split, and merged requests
    /// never hold more.
    #[arg(
        help_heading = "Batching",
        long,
        env = "MODELCRATE_MAX_BATCH_SIZE",
        default_value_t = 32
    )]
    pub max_batch_size: usize,
    /// Most padded tokens (texts × longest text) in one session run.
    #[arg(help_heading = "Batching", long, env = "MODELCRATE_MAX_BATCH_TOKENS", default_value_t = 32 * 128)]
    pub max_batch_tokens: usize,
    /// How long a worker waits for more requests to fill a batch, in milliseconds. 0
    /// takes what queued while the last batch ran, which under load is a full batch; a
    /// wait only adds latency when requests are few (measured: 2 ms cost 15 % of
    /// single-request throughput and gained nothing at concurrency 8 and 32).
    #[arg(
        help_heading = "Batching",
        long,
        env = "MODELCRATE_MAX_QUEUE_DELAY_MS",
        default_value_t = 0
    )]
    pub max_queue_delay_ms: u64,
    /// Requests that may wait per model; beyond it requests get 429 with Retry-After.
    #[arg(
        help_heading = "Batching",
        long,
        env = "MODELCRATE_QUEUE_CAPACITY",
        default_value_t = 256
    )]
    pub queue_capacity: usize,
    /// How long a request may wait for its answer, in milliseconds; then 504.
    #[arg(
        help_heading = "Limits",
        long,
        env = "MODELCRATE_REQUEST_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub request_timeout_ms: u64,
    /// Most inputs one request may carry.
    #[arg(
        help_heading = "Limits",
        long,
        env = "MODELCRATE_MAX_CLIENT_BATCH_SIZE",
        default_value_t = 64
    )]
    pub max_client_batch_size: usize,
    /// Largest request body, in bytes (an image upload is one body: a phone photo is 2–6 MB).
    #[arg(help_heading = "Limits", long, env = "MODELCRATE_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most bytes a request's line and headers may take (at least 8192); a larger head gets
    /// 431 and its connection closes.
    #[arg(help_heading = "Limits", long, env = "MODELCRATE_MAX_HEADER_BYTES", default_value_t = 32 * 1024)]
    pub max_header_bytes: usize,
    /// Longest a client may take to send a request's line and headers, in milliseconds; a
    /// slower one (a byte at a time, or never finishing) is disconnected.
    #[arg(
        help_heading = "Limits",
        long,
        env = "MODELCRATE_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,
    /// Most connections open at once; more wait to be accepted until one closes.
    #[arg(
        help_heading = "Limits",
        long,
        env = "MODELCRATE_MAX_CONNECTIONS",
        default_value_t = 512
    )]
    pub max_connections: usize,
    /// Largest image accepted, in pixels (width × height), checked from its header before it
    /// is decoded; larger images get 413.
    #[arg(help_heading = "Limits", long, env = "MODELCRATE_MAX_IMAGE_PIXELS", default_value_t = modelcrate_runtime::image::DEFAULT_MAX_PIXELS)]
    pub max_image_pixels: u64,
    /// On the TEI and OpenAI routes, cut a text longer than the model's max length there
    /// when the request does not say (TEI's `truncate`); without it such a text gets 413.
    /// The Inference API route always truncates, as the `transformers` pipeline does.
    #[arg(help_heading = "Protocols", long, env = "MODELCRATE_AUTO_TRUNCATE")]
    pub auto_truncate: bool,
    /// On SIGTERM or SIGINT, how long requests in flight may take to finish, in
    /// milliseconds; new ones get 503 meanwhile. Then the server exits regardless.
    #[arg(
        help_heading = "Limits",
        long,
        env = "MODELCRATE_DRAIN_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub drain_timeout_ms: u64,
    /// On SIGTERM or SIGINT, how long to go on answering every request while
    /// `/health/ready` already answers 503, in milliseconds, before the drain: the time a
    /// load balancer or a Kubernetes endpoint update takes to stop sending here. 0 drains
    /// at once. Behind a load balancer, set it above its health check's interval × fall.
    #[arg(
        help_heading = "Limits",
        long,
        env = "MODELCRATE_SHUTDOWN_DELAY_MS",
        default_value_t = 0
    )]
    pub shutdown_delay_ms: u64,
    /// Folder with each model's golden outputs (`<name>/reference.json`, as `cargo xtask
    /// golden` writes them): a hot reload's canary holds the new model to them.
    #[arg(help_heading = "Model", long, env = "MODELCRATE_GOLDEN", default_value = "golden")]
    pub golden: PathBuf,
    /// How often to look for changed files in each model's folder, in milliseconds; a
    /// folder that changed and then stayed as it is for one more look is reloaded behind
    /// its canary. 0 turns watching off (`POST /admin/models/{name}/reload` still works, with
    /// `--admin-token`).
    #[arg(
        help_heading = "Model",
        long,
        env = "MODELCRATE_WATCH_INTERVAL_MS",
        default_value_t = 2_000
    )]
    pub watch_interval_ms: u64,
    /// Start even when some models' folders have no `serving.json` yet (their pipeline is
    /// still running, as in `cargo xtask all`): those are listed as coming by `/models` and
    /// `/health/ready`, answer 503 with Retry-After, and are loaded behind their canary by
    /// the watcher once `serving.json` appears. Without it such a model loads its FP32 file
    /// at start. Needs the watcher (`--watch-interval-ms` > 0).
    #[arg(help_heading = "Model", long, env = "MODELCRATE_WAIT_FOR_MODELS")]
    pub wait_for_models: bool,
    /// A token the admin routes (`POST /admin/models/{name}/reload`) want as
    /// `Authorization: Bearer <token>` (at least 8 characters); without it they are off
    /// (403), the watcher alone reloading models.
    #[arg(help_heading = "Admin", long, env = "MODELCRATE_ADMIN_TOKEN", hide_env_values = true, value_parser = admin_token)]
    pub admin_token: Option<AdminToken>,
    /// An origin browsers may call the API from (CORS), e.g. `https://app.example.com`;
    /// repeat it for several, or `*` for any. Without it no CORS headers are sent, and a
    /// browser refuses other origins' pages their answers.
    #[arg(
        help_heading = "Protocols",
        long = "cors-allow-origin",
        env = "MODELCRATE_CORS_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    pub cors_allow_origins: Vec<String>,
}

impl Config {
    /// Parses the process's arguments, with the `--config` file's settings as defaults.
    pub fn from_env_and_args() -> Result<Self> {
        Self::parse_from_args(std::env::args_os().collect())
    }

    /// As [`Config::from_env_and_args`], from `args` (the program name first).
    pub fn parse_from_args(args: Vec<OsString>) -> Result<Self> {
        // Where the file is: the flag or the environment, read before anything else.
        let path = Self::try_parse_from(&args).ok().and_then(|config| config.config);
        // clap keeps a command's texts for the life of the process: made once, at start.
        let long_version: &'static str = Box::leak(long_version().into_boxed_str());
        let mut command = Self::command().long_version(long_version);
        if let Some(path) = &path {
            for (id, values) in file_settings(path, &command)? {
                command = command.mut_arg(id, |arg| arg.default_values(values));
            }
        }
        let matches = command.try_get_matches_from(args)?;
        let config = Self::from_arg_matches(&matches)?;
        if config.wait_for_models && config.watch_interval_ms == 0 {
            bail!("--wait-for-models needs the watcher to load the models still coming, and --watch-interval-ms is 0");
        }
        if config.max_header_bytes < MIN_HEADER_BYTES {
            bail!("--max-header-bytes must be at least {MIN_HEADER_BYTES} (hyper's read buffer)");
        }
        if config.max_connections == 0 || config.header_read_timeout_ms == 0 {
            bail!("--max-connections and --header-read-timeout-ms must be at least 1");
        }
        if let Some(token) = &config.admin_token
            && token.length() < MIN_ADMIN_TOKEN_LENGTH
        {
            bail!(
                "--admin-token (MODELCRATE_ADMIN_TOKEN) must be at least {MIN_ADMIN_TOKEN_LENGTH} characters besides spaces"
            );
        }
        Ok(config)
    }

    /// What the listener holds each connection to.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            max_header_bytes: self.max_header_bytes,
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
        }
    }

    /// The operator's say over each model's engine (its measured policy fills the rest).
    pub fn engines(&self) -> EngineFlags {
        EngineFlags {
            layout: self.layout,
            sessions: self.sessions,
            intra_threads: self.intra_threads,
            merge: self.merge,
            max_batch_size: self.max_batch_size,
            max_batch_tokens: self.max_batch_tokens,
            max_queue_delay: Duration::from_millis(self.max_queue_delay_ms),
            queue_capacity: self.queue_capacity,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_client_batch_size: self.max_client_batch_size,
            max_body_bytes: self.max_body_bytes,
            max_image_pixels: self.max_image_pixels,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            auto_truncate: self.auto_truncate,
        }
    }

    /// How a hot reload loads and checks a model: as at start.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            artifacts: self.artifacts.clone(),
            golden: self.golden.clone(),
            load: self.load_options(),
            engines: self.engines(),
            warm_up_timeout: self.warm_up_timeout(),
            admin_token: self.admin_token.clone(),
        }
    }

    /// A warm-up runs a full batch of the longest texts: it may take longer than a request.
    pub fn warm_up_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms).max(Duration::from_secs(60))
    }

    /// How every model loads, but for its layout, which [`EngineFlags::plan`] gives per model.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            ort_dylib: self.ort_dylib.clone(),
            variant: VariantChoice::parse(&self.variant),
            max_batch_size: self.max_batch_size,
            ..LoadOptions::default()
        }
    }
}

/// The settings of a TOML file as (argument id, values), each key checked against the
/// flags; an error names the file and the key.
fn file_settings(path: &Path, command: &clap::Command) -> Result<Vec<(&'static str, Vec<&'static str>)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
    let mut settings = Vec::new();
    for (key, value) in table {
        let long = key.replace('_', "-");
        let Some(arg) = command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(long.as_str()) && long != "config")
        else {
            let known: Vec<String> = command
                .get_arguments()
                .filter_map(|arg| arg.get_long().filter(|long| *long != "config" && *long != "help"))
                .map(str::to_string)
                .collect();
            bail!(
                "{}: unknown key `{key}`; the keys are the flags' names: {known:?}",
                path.display()
            );
        };
        let scalar = |value: &toml::Value| -> Result<String> {
            match value {
                toml::Value::String(text) => Ok(text.clone()),
                toml::Value::Integer(number) => Ok(number.to_string()),
                toml::Value::Boolean(flag) => Ok(flag.to_string()),
                other => bail!(
                    "{}: key `{key}` must be a string, a number or a boolean, got {}",
                    path.display(),
                    other.type_str()
                ),
            }
        };
        let values = match &value {
            toml::Value::Array(items) => items.iter().map(scalar).collect::<Result<Vec<_>>>()?,
            other => vec![scalar(other)?],
        };
        // clap keeps defaults for the life of the process: these are read once, at start.
        let id: &'static str = Box::leak(arg.get_id().as_str().to_string().into_boxed_str());
        settings.push((
            id,
            values.into_iter().map(|v| &*Box::leak(v.into_boxed_str())).collect(),
        ));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(file: &str, args: &[&str]) -> Result<Config> {
        let dir = std::env::temp_dir().join(format!("modelcrate-config-{}-{}", std::process::id(), file.len()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("server.toml");
        std::fs::write(&path, file)?;
        let mut all: Vec<OsString> = vec!["modelcrate-server".into(), "--config".into(), path.clone().into()];
        all.extend(args.iter().map(OsString::from));
        let parsed = Config::parse_from_args(all);
        let _ = std::fs::remove_dir_all(&dir);
        parsed
    }

    #[test]
    fn every_flag_is_under_a_heading_and_the_version_names_what_is_linked() {
        let command = Config::command();
        let loose: Vec<&str> = command
            .get_arguments()
            .filter(|arg| arg.get_help_heading().is_none() && !["help", "version"].contains(&arg.get_id().as_str()))
            .map(|arg| arg.get_id().as_str())
            .collect();
        assert!(loose.is_empty(), "flags under no heading: {loose:?}");
        let headings: std::collections::BTreeSet<&str> = command
            .get_arguments()
            .filter_map(|arg| arg.get_help_heading())
            .collect();
        assert_eq!(
            headings,
            ["Admin", "Batching", "Limits", "Model", "Protocols", "Server"].into()
        );
        let error = Config::parse_from_args(vec!["modelcrate-server".into(), "--version".into()]).unwrap_err();
        let shown = error.downcast::<clap::Error>().unwrap();
        assert_eq!(shown.kind(), clap::error::ErrorKind::DisplayVersion);
        let text = shown.to_string();
        assert!(
            text.starts_with(concat!("modelcrate-server ", env!("CARGO_PKG_VERSION")))
                && text.contains("models linked: ")
                && text.contains("news-topic"),
            "{text}"
        );
    }

    #[test]
    fn the_log_format_is_text_or_json() {
        assert_eq!(parse("", &[]).unwrap().log_format, LogFormat::Text);
        assert_eq!(
            parse("log-format = \"json\"\n", &[]).unwrap().log_format,
            LogFormat::Json
        );
        let error = format!("{:#}", parse("", &["--log-format", "yaml"]).unwrap_err());
        assert!(error.contains("--log-format") && error.contains("yaml"), "{error}");
    }

    #[test]
    fn waiting_for_models_without_the_watcher_is_refused() {
        let error = parse("", &["--wait-for-models", "--watch-interval-ms", "0"]).unwrap_err();
        assert!(
            error.to_string().contains("--wait-for-models needs the watcher"),
            "{error}"
        );
        assert!(parse("wait-for-models = true\n", &[]).unwrap().wait_for_models);
    }

    #[test]
    fn a_short_or_blank_admin_token_is_refused() {
        for token in ["short", "        ", " 1234567 "] {
            let error = parse("", &["--admin-token", token]).unwrap_err().to_string();
            assert!(
                error.contains("--admin-token") && error.contains("at least 8"),
                "{error}"
            );
        }
        let config = parse("", &["--admin-token", "s3cret-token"]).unwrap();
        assert!(config.admin_token.is_some());
        assert!(!format!("{config:?}").contains("s3cret"), "Debug hides the token");
    }

    #[test]
    fn the_file_sets_defaults_and_flags_override_it() {
        let file = "max-batch-size = 16\nmax_queue_delay_ms = 2\nauto-truncate = true\nmodel = [\"news-topic\", \"news-embed\"]\nhost = \"0.0.0.0\"\n";
        let config = parse(file, &[]).unwrap();
        assert_eq!(config.max_batch_size, 16);
        assert_eq!(config.max_queue_delay_ms, 2);
        assert!(config.auto_truncate);
        assert_eq!(config.models, vec!["news-topic", "news-embed"]);
        assert_eq!(config.host, "0.0.0.0");
        assert_eq!(
            config.queue_capacity, 256,
            "a key the file leaves out keeps its default"
        );
        let config = parse(file, &["--max-batch-size", "8"]).unwrap();
        assert_eq!(config.max_batch_size, 8);
    }

    #[test]
    fn an_unknown_key_or_a_wrong_value_names_the_file_and_the_key() {
        let error = parse("max-batch = 16\n", &[]).unwrap_err().to_string();
        assert!(error.contains("server.toml: unknown key `max-batch`"), "{error}");
        let error = format!("{:#}", parse("max-batch-size = \"many\"\n", &[]).unwrap_err());
        assert!(error.contains("max-batch-size") && error.contains("many"), "{error}");
        let error = parse("port = 1.5\n", &[]).unwrap_err().to_string();
        assert!(
            error.contains("key `port` must be a string, a number or a boolean"),
            "{error}"
        );
    }
}
