//! `renderd` command line: render a scenario over a video, draw one frame, list GPUs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use renderd::config::{Config, OutputRequest};
use renderd::domain::job::OutputFormat;
use renderd::engine::{Engine, RenderRequest};
use renderd::pipeline::EncoderChoice;
use renderd::progress::{CancelToken, Progress};

#[derive(Parser, Debug)]
#[command(
    name = "renderd",
    version,
    about = "GPU video render service for MotionText captions"
)]
struct Cli {
    /// Configuration file (TOML); `RENDERD__SECTION__KEY` variables override it.
    #[arg(long, global = true, env = "RENDERD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Render SCENARIO over a video into an MP4 or MOV (H.264 + AAC / the source audio) or a
    /// WebM (VP9 + Opus).
    Render {
        scenario: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[arg(long)]
        width: Option<u32>,
        #[arg(long)]
        height: Option<u32>,
        #[arg(long)]
        fps: Option<u32>,
        /// 10–100 (old system's mapping to CRF / CQ).
        #[arg(long)]
        quality: Option<u8>,
        #[arg(long, value_enum)]
        encoder: Option<EncoderChoice>,
        /// Container: mp4, mov or webm; default: the one --output's extension names, else mp4.
        #[arg(long, value_parser = format_parser())]
        format: Option<OutputFormat>,
    },
    /// Draw one composited frame to a PNG.
    Frame {
        scenario: PathBuf,
        /// Media time in seconds.
        #[arg(long)]
        at: f64,
        #[arg(long)]
        output: PathBuf,
        /// Composite over this video's frame at that time (else a solid background).
        #[arg(long)]
        input: Option<PathBuf>,
        #[arg(long)]
        width: Option<u32>,
        #[arg(long)]
        height: Option<u32>,
        /// Background colour (any CSS colour) when there is no input video.
        #[arg(long, default_value = "#000000")]
        background: String,
    },
    /// List the Vulkan devices and whether NVENC can open.
    Devices,
    /// Serve render.v1.RenderService (with health, reflection and downloads) on
    /// `[server] listen`, rendering queued jobs with this machine's GPU.
    Serve,
    /// Print a JWT for USER signed with the configured HS256 secret (the development secret
    /// when none is configured), for development and tests.
    Token {
        #[arg(long)]
        user: String,
        /// Plan whose quotas apply (default: `[auth] default_plan`).
        #[arg(long)]
        plan: Option<String>,
        /// Roles, e.g. `--role admin`; repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Lifetime, e.g. `1h`, `30m`, `7d`.
        #[arg(long, default_value = "1h", value_parser = humantime_serde::re::humantime::parse_duration)]
        ttl: Duration,
    },
    /// Apply the job database's pending migrations and exit.
    Migrate,
}

/// `--format`: one of the output formats, listed in `--help`.
fn format_parser() -> impl clap::builder::TypedValueParser<Value = OutputFormat> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(OutputFormat::ALL.map(OutputFormat::as_str))
        .try_map(|name| name.parse::<OutputFormat>())
}

fn main() {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    };
    // Logs (RENDERD_LOG filter, text or JSON) and, with an OTLP endpoint, trace export.
    let telemetry = match renderd::telemetry::init(&config.telemetry) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    };
    let result = run(cli.command, config);
    telemetry.shutdown();
    if let Err(err) = result {
        eprintln!("error: {}", describe(&err));
        std::process::exit(1);
    }
}

/// The error and its causes on one line, skipping a cause whose text the message before it
/// already includes (many error types print their source in their own message).
fn describe(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn run(command: Command, config: Config) -> Result<()> {
    match command {
        Command::Render {
            scenario,
            input,
            output,
            width,
            height,
            fps,
            quality,
            encoder,
            format,
        } => {
            let format = format
                .or_else(|| {
                    output
                        .extension()
                        .and_then(|ext| ext.to_str())
                        .and_then(OutputFormat::from_extension)
                })
                .unwrap_or_default();
            let options = OutputRequest {
                width,
                height,
                fps,
                quality,
            };
            render(
                config,
                &scenario,
                RenderRequest {
                    input,
                    output,
                    options,
                    encoder,
                    format,
                },
            )
        }
        Command::Frame {
            scenario,
            at,
            output,
            input,
            width,
            height,
            background,
        } => {
            let Some(bg) = renderd::scene::color::parse_color(&background) else {
                bail!("--background {background:?} is not a CSS colour");
            };
            if !at.is_finite() || at < 0.0 {
                bail!("--at must be a non-negative number of seconds");
            }
            let engine = Engine::new(config)?;
            let scene = Arc::new(engine.load_scene(&scenario)?);
            let image = engine.frame(scene, at, input.as_deref(), (width, height), bg)?;
            check_validation(&engine)?;
            write_png(&output, image.width, image.height, &image.pixels)?;
            println!("{}", output.display());
            Ok(())
        }
        Command::Serve => serve(config),
        Command::Token {
            user,
            plan,
            roles,
            ttl,
        } => {
            let auth = renderd::app::effective_auth(&config)?;
            let token = renderd::auth::mint_hs256(
                &auth,
                &renderd::auth::MintRequest {
                    user_id: user,
                    plan,
                    roles,
                    ttl,
                },
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Migrate => runtime()?.block_on(async {
            let store = renderd::store::JobStore::connect(&config.database.url).await?;
            store.migrate().await?;
            println!("job database is up to date");
            Ok(())
        }),
        Command::Devices => {
            for (name, kind) in renderd::gpu::list_devices()? {
                println!("vulkan: {name} ({kind:?})");
            }
            println!(
                "nvenc: {}",
                if renderd::pipeline::nvenc_available() {
                    "available"
                } else {
                    "not available"
                }
            );
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("renderd-rt")
        .build()
        .context("starting the async runtime")
}

fn serve(config: Config) -> Result<()> {
    runtime()?.block_on(async {
        let mut running = renderd::app::start(config).await?;
        println!("listening on {}", running.addr);
        if let Some(metrics) = running.metrics_addr {
            println!("metrics on http://{metrics}/metrics");
        }
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = sigterm.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
            result = running.wait() => {
                result.context("the server stopped")?;
                bail!("the server stopped unexpectedly");
            }
        }
        running.shutdown().await.context("shutting down")?;
        Ok(())
    })
}

fn render(config: Config, scenario: &Path, req: RenderRequest) -> Result<()> {
    let engine = Engine::new(config)?;
    let gpu = engine.gpu();
    tracing::info!(device = gpu.device_name(), "GPU");
    let scene = Arc::new(engine.load_scene(scenario)?);

    let cancel = CancelToken::new();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, cancel.flag())
            .context("installing the signal handler")?;
    }

    let reporter = Reporter::new();
    let sink = |p: &Progress| reporter.report(p);
    let started = Instant::now();
    let result = engine.render(scene, &req, &sink, &cancel);
    reporter.finish();
    check_validation(&engine)?;
    let report = match result {
        Ok(r) => r,
        Err(e) if cancel.is_cancelled() => bail!("cancelled; no output written ({e})"),
        Err(e) => return Err(e).with_context(|| format!("rendering {}", req.output.display())),
    };
    println!(
        "{}: {} frames, {:.2} s, encoder {:?}, {:.1} fps, wall {:.2} s",
        req.output.display(),
        report.frames,
        report.duration_s,
        report.encoder,
        report.fps,
        started.elapsed().as_secs_f64()
    );
    let st = &report.stage_seconds;
    println!(
        "busy seconds per stage: decode {:.2}, compose {:.2}, gpu {:.2}, encode {:.2}, mux {:.2}",
        st.decode_s, st.prepare_s, st.stage_s, st.encode_s, st.mux_s
    );
    Ok(())
}

/// A progress bar on a terminal, plain lines (at most one every 2 s) otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    last_line: std::sync::Mutex<Instant>,
}

impl Reporter {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{spinner} {msg:>10} [{bar:40}] {pos}/{len} frames · {per_sec} · ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Reporter {
            bar,
            last_line: std::sync::Mutex::new(Instant::now() - Duration::from_secs(10)),
        }
    }

    fn report(&self, p: &Progress) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(p.frames_total.max(p.frames_done));
                bar.set_position(p.frames_done);
                bar.set_message(p.stage.as_str());
            }
            None => {
                let Ok(mut last) = self.last_line.lock() else {
                    return;
                };
                if last.elapsed() >= Duration::from_secs(2) || p.frames_done >= p.frames_total {
                    *last = Instant::now();
                    eprintln!(
                        "{} {}/{} frames {:.1} fps",
                        p.stage.as_str(),
                        p.frames_done,
                        p.frames_total,
                        p.fps
                    );
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// With Vulkan validation on (`[gpu] validation`), any validation error fails the command.
fn check_validation(engine: &Engine) -> Result<()> {
    let errors = engine.gpu().validation_errors();
    if errors > 0 {
        bail!("{errors} Vulkan validation error(s); see the log above");
    }
    Ok(())
}

fn write_png(path: &Path, width: u32, height: u32, rgba: &[u8]) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgba)?;
    Ok(())
}
